"""CLI verbs: `wikimix shards ls [ROOT]` and `wikimix shards verify PATH`."""

from __future__ import annotations

from typing import Annotated

import typer

shards_app = typer.Typer(help="List and verify versioned Parquet shards.", no_args_is_help=True)


@shards_app.command("ls")
def ls(
    root: Annotated[str | None, typer.Argument(help="data root (default $WIKIMIX_DATA or ./data)")] = None,
):
    """List datasets, committed versions, tables and row counts; a bad version is named, the rest listed."""
    from storage.store import data_root, list_datasets, list_versions
    from wikimix.errors import WikimixError

    root = data_root(root)
    datasets = list_datasets(root)
    if not datasets:
        typer.echo(f"no datasets under {root}")
        return
    problems: list[str] = []
    for dataset in datasets:
        for ref in list_versions(root, dataset, problems=problems):
            manifest = ref.manifest()
            for table, facts in sorted(manifest["tables"].items()):
                typer.echo(
                    f"{dataset}\t{ref.version}\t{table}\t{facts['rows']} rows\t{len(facts['files'])} files"
                    f"\t{manifest['created_at']}"
                )
    if problems:
        raise WikimixError(f"{len(problems)} unreadable version(s), listed the rest: " + "; ".join(problems))


@shards_app.command("verify")
def verify_cmd(path: Annotated[str, typer.Argument(help="<root>/<dataset>/<version> to re-hash")]):
    """Re-hash every file against the manifest; exit 1 naming each missing, extra or changed file."""
    from storage.store import ref_from_path, verify

    ref = ref_from_path(path)
    problems = verify(ref)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {ref} ({sum(len(t['files']) for t in ref.manifest()['tables'].values())} files intact)")


def register(app: typer.Typer) -> None:
    app.add_typer(shards_app, name="shards")
