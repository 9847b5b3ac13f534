"""``autellix model ...``: generate local models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autellix_backend.models.tiny import TinyModelSpec, ensure_tiny_model

model_app = typer.Typer(help="Generate models that need no download.", no_args_is_help=True)


@model_app.command("tiny")
def tiny(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory to write (default: $AUTELLIX_CACHE_DIR/models/tiny)."),
    ] = None,
    layers: Annotated[int, typer.Option(help="Number of transformer layers.")] = 2,
    hidden_size: Annotated[int, typer.Option(help="Model width (head_dim = width / 4).")] = 256,
    force: Annotated[bool, typer.Option(help="Rewrite even if an identical copy exists.")] = False,
) -> None:
    """Write a tiny Llama config and a locally trained tokenizer (serve with load_format=dummy)."""
    spec = TinyModelSpec(
        hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=layers
    )
    path = ensure_tiny_model(out, spec=spec, force=force)
    typer.echo(str(path))
