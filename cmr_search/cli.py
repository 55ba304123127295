"""The ``cmr-search`` command line.

Each stage package registers its own commands, so this module only wires
them together and sets up logging. Heavy imports (torch, faiss) happen inside
the commands, which keeps ``cmr-search --help`` fast.
"""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.logging import RichHandler

from embeddings import commands as embedding_commands
from embeddings.cmrclip import commands as cmrclip_commands
from indexer import commands as indexer_commands
from phantom import commands as phantom_commands
from search_app import commands as search_commands

app = typer.Typer(
    name="cmr-search",
    help="Natural-language case retrieval for cardiac MRI archives.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level instead of INFO."),
) -> None:
    """Set up logging on standard error for every command."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)],
    )
    # faiss logs at INFO each CPU-specific library it tries and fails to load
    # (AVX512 and others), which reads like an error on an ordinary machine.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


indexer_commands.register(app)
phantom_commands.register(app)
embedding_commands.register(app)
cmrclip_commands.register(app)
search_commands.register(app)
