"""The ``autellix`` command."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Autellix: program-aware LLM serving for agentic programs.", no_args_is_help=True
)


@app.callback()
def _root() -> None:
    """Autellix command line."""


def main() -> None:
    app()


import autellix_backend.bench.cli  # noqa: E402  (registers `autellix bench`)
import autellix_backend.models.commands  # noqa: E402  (`autellix model`, `calibrate`)
import autellix_backend.server.cli  # noqa: E402, F401  (registers `autellix serve`)
