"""CLI verbs: (being built)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
