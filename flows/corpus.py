"""build-corpus: fetch -> sections -> align -> code-switch (+ LID, metrics) -> significance -> manifest.

    prefect deployment run 'build-corpus/weekly-rebuild'                      # as a deployment
    python -c "from flows.corpus import build_corpus; build_corpus(name='sample')"   # in-process

Each stage writes one dataset version (`<name>-wiki`, `-align`, `-docs`, `-sig`) through
storage.store, shard by shard: one task per shard, tasks exchange version paths only. A stage is
`plan_version` (a cached task: the same inputs give the same version id, so a rebuild with unchanged
input lands on the versions it already wrote and every shard task is a cache hit), one task per shard,
and `commit_version` (writes the manifest last). The data root is the process's $WIKIMIX_DATA (a path
or an fsspec URL); Prefect results and cache records live under `<root>/.prefect/results`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed

from flows import artifacts
from flows.policy import (
    CACHE_POLICY,
    ensure_rate_limit,
    make_task_runner,
    persisted,
    resolve_root,
    retry_policy,
    wiki_api_slot,
)
from storage.store import StorageError, VersionWriter, new_version_id, open_version, ref_from_path
from wikimix.errors import ConfigError
from wikimix.guards import require_rows

REPO = Path(__file__).resolve().parent.parent
SAMPLE_WIKI = REPO / "samples" / "wiki"


# --- stage plumbing: plan a version, write shards, commit --------------------------------------------


@task(cache_policy=CACHE_POLICY, **retry_policy())
def plan_version(root: str, dataset: str, params: dict, parents: list[str]) -> str:
    """A new version id for `dataset`; cached, so unchanged inputs give the version already written."""
    return new_version_id({"params": params, "parents": parents})


def _is_committed(root: str, dataset: str, version: str) -> bool:
    try:
        open_version(root, dataset, version)
    except StorageError:
        return False
    return True


def _writer(root: str, dataset: str, version: str) -> VersionWriter | None:
    """The version's writer to add shards to; None once it is committed (every shard is there)."""
    return None if _is_committed(root, dataset, version) else VersionWriter(root, dataset, version)


@task(cache_policy=CACHE_POLICY, **retry_policy())
def commit_version(
    root: str, dataset: str, version: str, params: dict, parents: list[str], shards: list, table: str
) -> str:
    """Write the manifest (last) once every shard task finished; returns the version path.

    An empty `table` fails the task (and the flow) instead: nothing is committed, `latest` stays.
    """
    if not _is_committed(root, dataset, version):
        parent_refs = [ref_from_path(p) for p in parents]
        writer = VersionWriter(root, dataset, version, params=params, parents=parent_refs)
        sources = ", ".join(f"{ref} ({', '.join(_row_counts(ref))})" for ref in parent_refs)
        require_rows(writer, table, f"build-corpus {dataset}", f"{len(shards)} shard task(s) from {sources}")
        writer.commit()
    return ref_from_path(f"{root.rstrip('/')}/{dataset}/{version}").path


def _row_counts(ref) -> list[str]:
    return [f"{ref.num_rows(table)} {table}" for table in ref.tables()]


def run_shards(runner, step, num_shards: int, progress: artifacts.Progress | None = None, **params) -> list:
    """One task per shard (rank r of num_shards) on the task runner; their results in shard order."""
    futures = [
        runner.submit(step, {**params, "rank": r, "world_size": num_shards}) for r in range(num_shards)
    ]
    for done, _ in enumerate(as_completed(futures), start=1):
        if progress is not None:
            progress.update(done, num_shards)
    return [f.result() for f in futures]


# --- stage tasks --------------------------------------------------------------------------------------


def dump_fingerprint(dumps: str) -> list[tuple[str, int, int]]:
    """Name, size and mtime of every dump file: part of the cache key, so a new dump is re-read."""
    from pipeline.dump import find_dumps

    paths = find_dumps(dumps)
    return [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in paths.values()]


@task(cache_policy=CACHE_POLICY, **retry_policy())
def ingest_dumps(
    root: str, dataset_name: str, dumps: str, concepts: str, langs: list[str] | None, fingerprint: list
) -> str:
    """pages + sections + fetch_log from pages-articles dumps (one shard per language); version path."""
    from pipeline.dump import ingest_dumps as ingest

    logger = get_run_logger()
    ref, reports = ingest(dumps, concepts, root=root, name=dataset_name, langs=langs)
    for lang, report in reports.items():
        logger.info("%s: %s", lang, report)
    return ref.path


def revisions(path: str) -> list[tuple[str, int, int]]:
    """The (wiki, page_id, rev_id) a wiki version holds: what its content depends on."""
    pages = ref_from_path(path).scan("pages").select("wiki", "page_id", "rev_id").collect()
    return sorted(pages.iter_rows())


@task(**retry_policy())  # never cached: the wiki may have changed since the last build
def fetch_wiki(
    root: str, dataset_name: str, api_urls: dict[str, str], concepts: str, langs: list[str] | None
) -> str:
    """pages + sections + fetch_log from live MediaWiki APIs, every request rate-limited (`wiki-api`).

    The fetcher re-downloads only revisions it has not stored. When every page is still at the revision
    the previous version holds, that version is returned, so the later stages' cache keys (their input
    version paths) are unchanged and a rebuild of an unchanged wiki reuses all their work.
    """
    from pipeline import fetch

    try:
        previous = open_version(root, f"{dataset_name}-wiki").path
    except StorageError:
        previous = None
    ref = fetch.fetch_concepts(
        api_urls, concepts, root=root, name=dataset_name, langs=langs, rate_limit=wiki_api_slot
    )
    if previous and ref.path != previous and revisions(previous) == revisions(ref.path):
        get_run_logger().info("no page changed since %s: reusing it", ref_from_path(previous))
        return previous
    return ref.path


@task(cache_policy=CACHE_POLICY, **retry_policy())
def align_shard(root: str, wiki: str, dataset: str, version: str, rank: int, world_size: int) -> dict:
    from pipeline.align import align_version

    writer = _writer(root, dataset, version)
    if writer is None:
        return {"skipped": True}
    return align_version(ref_from_path(wiki), writer, rank=rank, world_size=world_size)


@task(cache_policy=CACHE_POLICY, **retry_policy())
def documents_shard(
    root: str, wiki: str, align: str, dataset: str, version: str, config: dict, rank: int, world_size: int
) -> dict:
    """Code-switched documents of the concepts this shard owns, with fastText LID and metrics."""
    from pipeline.codeswitch import BuildConfig, build_documents

    writer = _writer(root, dataset, version)
    if writer is None:
        return {"skipped": True}
    report = build_documents(
        ref_from_path(wiki), ref_from_path(align), writer, BuildConfig(**config), rank, world_size
    )
    get_run_logger().info("documents shard %d/%d: %s", rank, world_size, report)
    return report


@task(cache_policy=CACHE_POLICY, **retry_policy())
def significance_shard(
    root: str, docs: str, dataset: str, version: str, rankers: list[str], rank: int, world_size: int
) -> list[str]:
    """Significance rankings of one documents shard (the slowest step on a CPU: the unit of resume)."""
    from pipeline.encoder import Encoder, EncoderConfig
    from pipeline.significance import make_ranker, rank_version

    writer = _writer(root, dataset, version)
    if writer is None:
        return []
    docs_ref = ref_from_path(docs)
    needs_encoder = any(r in ("loo", "greedy") for r in rankers)
    encoder = Encoder(EncoderConfig()) if needs_encoder else None
    ranker_objs = [make_ranker(name, encoder, docs=docs_ref) for name in rankers]
    # documents shard i -> rank i % world_size: with one rank per documents shard, exactly shard `rank`
    return rank_version(docs_ref, writer, ranker_objs, rank=rank, world_size=world_size, progress=False)


# --- the flow -----------------------------------------------------------------------------------------


@flow(name="build-corpus", log_prints=True)
def build_corpus(
    name: str = "sample",
    source: Literal["dumps", "wiki"] = "dumps",
    dumps: str = str(SAMPLE_WIKI),
    concepts: str = str(SAMPLE_WIKI / "concepts.tsv"),
    api_urls: dict[str, str] | None = None,
    langs: list[str] | None = None,
    shards: int = 2,
    policy: Literal["uniform", "weighted", "curriculum"] = "uniform",
    granularity: Literal["sentence", "clause"] = "sentence",
    seed: int = 0,
    min_langs: int = 3,
    max_chars: int = 2000,
    rankers: list[str] = ["loo"],  # noqa: B006 - Prefect parameters are copied per run
    requests_per_second: float = 10.0,
    task_runner: str = "threads",
    refresh_cache: bool = False,
) -> dict[str, str]:
    """Build one corpus; returns {stage: version path} for wiki, align, docs, sig."""
    logger = get_run_logger()
    if shards < 1:
        raise ConfigError(f"shards must be >= 1, got {shards}")
    root = resolve_root(None)
    opts = {"refresh_cache": True} if refresh_cache else {}

    def stage(t):
        return persisted(t, root).with_options(**opts)

    plan, commit = stage(plan_version), stage(commit_version)

    # 1. fetch -> sections (pages, sections, fetch_log)
    if source == "dumps":
        wiki = stage(ingest_dumps)(root, name, dumps, concepts, langs, dump_fingerprint(dumps))
    else:
        if not api_urls:
            raise ConfigError("source 'wiki' needs api_urls: {lang: 'http://host/api.php', ...}")
        ensure_rate_limit(requests_per_second)
        wiki = stage(fetch_wiki)(root, name, api_urls, concepts, langs)
    logger.info("wiki: %s", ref_from_path(wiki))

    with make_task_runner(task_runner) as runner:
        # 2. align (sharded by concept)
        params = {"world_size": shards}
        version = plan(root, f"{name}-align", params, [wiki])
        reports = run_shards(
            runner, stage(align_shard), shards, root=root, wiki=wiki, dataset=f"{name}-align", version=version
        )
        align = commit(root, f"{name}-align", version, params, [wiki], reports, "alignments")
        logger.info("align: %s", ref_from_path(align))

        # 3. code-switched documents + fastText LID + code-switching metrics (sharded by concept)
        build = dict(
            policy=policy, granularity=granularity, seed=seed, min_langs=min_langs, max_chars=max_chars
        )
        params = {**build, "world_size": shards}
        version = plan(root, f"{name}-docs", params, [wiki, align])
        reports = run_shards(
            runner, stage(documents_shard), shards,
            root=root, wiki=wiki, align=align, dataset=f"{name}-docs", version=version, config=build,
        )  # fmt: skip
        docs = commit(root, f"{name}-docs", version, params, [wiki, align], reports, "documents")
        docs_ref = ref_from_path(docs)
        logger.info("docs: %s (%d documents)", docs_ref, docs_ref.num_rows("documents"))

        # 4. significance: one task per documents shard, the slowest stage: a progress artifact
        params = {"rankers": rankers}
        version = plan(root, f"{name}-sig", params, [docs])
        progress = artifacts.Progress(f"{name}-significance-progress", f"significance of {docs_ref}")
        reports = run_shards(
            runner, stage(significance_shard), max(1, len(docs_ref.files("documents"))),
            root=root, docs=docs, dataset=f"{name}-sig", version=version, rankers=rankers, progress=progress,
        )  # fmt: skip
        sig = commit(root, f"{name}-sig", version, params, [docs], reports, "significance")
        logger.info("significance: %s", ref_from_path(sig))

    # 5. manifest: what the UI shows of this build
    refs = {"wiki": wiki, "align": align, "docs": docs, "sig": sig}
    publish_corpus(name, refs)
    return refs


def publish_corpus(name: str, refs: dict[str, str]) -> list[str]:
    """Dataset card, code-switching metrics, samples, significance examples and shard locations."""
    wiki, docs, sig = (ref_from_path(refs[k]) for k in ("wiki", "docs", "sig"))
    keys = [
        artifacts.dataset_card(name, wiki),
        artifacts.codeswitch_metrics(name, docs),
        artifacts.sample_documents(name, docs),
        artifacts.significance_examples(name, docs, sig),
    ]
    keys += [artifacts.location(name, ref_from_path(path)) for path in refs.values()]
    return keys
