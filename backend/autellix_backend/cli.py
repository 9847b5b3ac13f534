"""The ``autellix`` command: it assembles the sub-commands, which import nothing above them."""

from __future__ import annotations

import typer

from autellix_backend.bench.cli import bench_app
from autellix_backend.calibration.commands import calibrate
from autellix_backend.models.commands import model_app
from autellix_backend.plan.cli import plan
from autellix_backend.server.cli import serve


def build_app() -> typer.Typer:
    """The command tree: ``serve``, ``bench``, ``model``, ``calibrate``, ``plan``."""
    root = typer.Typer(
        help="Autellix: program-aware LLM serving for agentic programs.", no_args_is_help=True
    )

    @root.callback()
    def _root() -> None:
        """Autellix command line."""

    root.command("serve")(serve)
    root.add_typer(bench_app, name="bench")
    root.add_typer(model_app, name="model")
    root.command("calibrate")(calibrate)
    root.command("plan")(plan)
    return root


app = build_app()


def main() -> None:
    app()
