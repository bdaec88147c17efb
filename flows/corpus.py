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

import contextlib
import time
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed

from flows import artifacts, events
from flows.policy import (
    CACHE_POLICY,
    ENCODER_LIMIT,
    encoder_slot,
    ensure_concurrency_limit,
    ensure_rate_limit,
    make_task_runner,
    persisted,
    resolve_root,
    retry_policy,
    task_timeouts,
    wiki_api_slot,
)
from storage.store import StorageError, VersionWriter, new_version_id, open_version, ref_from_path
from wikimix.errors import ConfigError
from wikimix.guards import require_rows

REPO = Path(__file__).resolve().parent.parent
SAMPLE_WIKI = REPO / "samples" / "wiki"


# --- stage plumbing: plan a version, write shards, commit --------------------------------------------


@task(cache_policy=CACHE_POLICY, task_run_name="plan/{dataset}", **retry_policy())
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


@task(cache_policy=CACHE_POLICY, task_run_name="commit/{dataset}", **retry_policy())
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
        events.dataset_committed(f"{root.rstrip('/')}/{dataset}/{version}")
    return ref_from_path(f"{root.rstrip('/')}/{dataset}/{version}").path


def _row_counts(ref) -> list[str]:
    return [f"{ref.num_rows(table)} {table}" for table in ref.tables()]


def run_shards(runner, step, num_shards: int, progress: artifacts.Progress | None = None, **params) -> list:
    """One task per shard (rank r of num_shards) on the task runner; their results in shard order.
    With `progress`, the artifact follows the shards done, and each is logged with the ETA of the rest."""
    started = time.monotonic()
    futures = [
        runner.submit(step, {**params, "rank": r, "world_size": num_shards}) for r in range(num_shards)
    ]
    for done, _ in enumerate(as_completed(futures), start=1):
        if progress is not None:
            progress.update(done, num_shards)
            elapsed = time.monotonic() - started
            get_run_logger().info(
                "%s: %d/%d shards done, %.0f s, ETA %.0f s",
                progress.description, done, num_shards, elapsed, elapsed / done * (num_shards - done),
            )  # fmt: skip
    return [f.result() for f in futures]


# --- stage tasks --------------------------------------------------------------------------------------


def dump_fingerprint(dumps: str) -> list[tuple[str, int, int]]:
    """Name, size and mtime of every dump file: part of the cache key, so a new dump is re-read."""
    from pipeline.dump import find_dumps

    paths = find_dumps(dumps)
    return [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in paths.values()]


@task(cache_policy=CACHE_POLICY, task_run_name="ingest/{dataset_name}", **retry_policy())
def ingest_dumps(
    root: str, dataset_name: str, dumps: str, concepts: str, langs: list[str] | None, fingerprint: list
) -> str:
    """pages + sections + fetch_log from pages-articles dumps (one shard per language); version path."""
    from pipeline.dump import ingest_dumps as ingest

    logger = get_run_logger()
    ref, reports = ingest(dumps, concepts, root=root, name=dataset_name, langs=langs)
    for lang, report in reports.items():
        logger.info("%s: %s", lang, report)
    events.dataset_committed(ref.path)
    return ref.path


def revisions(path: str) -> list[tuple[str, int, int]]:
    """The (wiki, page_id, rev_id) a wiki version holds: what its content depends on."""
    pages = ref_from_path(path).scan("pages").select("wiki", "page_id", "rev_id").collect()
    return sorted(pages.iter_rows())


class FetchProgress:
    """The fetch's progress artifact (titles resolved of all requested) and a log line per batch."""

    def __init__(self, name: str, total: int):
        self.total, self.titles, self.started = total, 0, time.monotonic()
        self.artifact = artifacts.Progress(f"{name}-fetch-progress", f"fetch of {name}: {total} titles")
        self.logger = get_run_logger()

    def __call__(self, event: str, info: dict) -> None:
        if event == "resolved":
            self.titles += info["titles"]
            self.artifact.update(self.titles, self.total)
            self.logger.info(
                "fetch %s: %d/%d titles resolved, %d requests, %.0f s",
                info["lang"], self.titles, self.total, info["requests"], time.monotonic() - self.started,
            )  # fmt: skip
        elif event == "fetched":
            self.logger.info(
                "fetch %s: %d pages stored, %d requests", info["lang"], info["pages"], info["requests"]
            )
        elif event == "done":
            self.artifact.update(self.total, self.total)


# never cached: the wiki may have changed since the last build
@task(task_run_name="fetch/{dataset_name}", **retry_policy())
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
    from pipeline.concepts import read_concepts

    table = read_concepts(concepts)
    total = sum(1 for row in table.rows if langs is None or row.lang in langs)
    progress = FetchProgress(dataset_name, total)
    ref = fetch.fetch_concepts(
        api_urls,
        table,
        root=root,
        name=dataset_name,
        langs=langs,
        rate_limit=wiki_api_slot,
        progress=progress,
    )
    if previous and ref.path != previous and revisions(previous) == revisions(ref.path):
        get_run_logger().info("no page changed since %s: reusing it", ref_from_path(previous))
        return previous
    events.dataset_committed(ref.path)
    return ref.path


@task(cache_policy=CACHE_POLICY, task_run_name="align/rank-{rank}-of-{world_size}", **retry_policy())
def align_shard(
    root: str, wiki: str, dataset: str, version: str, rank: int, world_size: int, encoder: str = "none"
) -> dict:
    from pipeline.align import align_version, alignment_encoder

    writer = _writer(root, dataset, version)
    if writer is None:
        return {"skipped": True}
    # an encoder uses every core: it takes a slot of the `encoder` concurrency limit, as significance does
    with encoder_slot() if encoder != "none" else contextlib.nullcontext():
        enc = alignment_encoder(encoder)
        return align_version(ref_from_path(wiki), writer, rank=rank, world_size=world_size, encoder=enc)


@task(cache_policy=CACHE_POLICY, task_run_name="documents/rank-{rank}-of-{world_size}", **retry_policy())
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


@task(cache_policy=CACHE_POLICY, task_run_name="significance/rank-{rank}-of-{world_size}", **retry_policy())
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
    # an encoder uses every core: at most `encoder` limit slots of them run at once, whatever the runner
    with encoder_slot() if needs_encoder else contextlib.nullcontext():
        encoder = Encoder(EncoderConfig()) if needs_encoder else None
        ranker_objs = [make_ranker(name, encoder, docs=docs_ref) for name in rankers]
        # documents shard i -> rank i % world_size: with one rank per documents shard, exactly shard `rank`
        sig = rank_version(docs_ref, writer, ranker_objs, rank=rank, world_size=world_size, progress=False)
    get_run_logger().info("significance shard %d/%d: %d ranking file(s)", rank, world_size, len(sig))
    return sig


# --- the flow -----------------------------------------------------------------------------------------


@flow(name="build-corpus", flow_run_name="build-corpus/{name}", log_prints=True)
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
    align_encoder: Literal["none", "e5", "minilm"] = "none",
    requests_per_second: float = 10.0,
    task_runner: str = "threads",
    refresh_cache: bool = False,
    timeouts: dict[str, float] | None = None,
    encoders_at_once: int = 1,
) -> dict[str, str]:
    """Build one corpus; returns {stage: version path} for wiki, align, docs, sig.

    `timeouts`: seconds per task of the stages fetch, ingest, significance (policy.TASK_TIMEOUTS);
    `align_encoder`: embedding-margin evidence for alignment beside the anchors (e5 reads every script);
    `encoders_at_once`: the `encoder` concurrency limit, created with this many slots if missing."""
    logger = get_run_logger()
    if shards < 1:
        raise ConfigError(f"shards must be >= 1, got {shards}")
    root = resolve_root(None)
    opts = {"refresh_cache": True} if refresh_cache else {}
    limits = task_timeouts(timeouts)

    def stage(t, timeout: str | None = None):
        timed = {"timeout_seconds": limits[timeout]} if timeout else {}
        return persisted(t, root).with_options(**opts, **timed)

    plan, commit = stage(plan_version), stage(commit_version)

    # 1. fetch -> sections (pages, sections, fetch_log)
    if source == "dumps":
        wiki = stage(ingest_dumps, "ingest")(root, name, dumps, concepts, langs, dump_fingerprint(dumps))
    else:
        if not api_urls:
            raise ConfigError("source 'wiki' needs api_urls: {lang: 'http://host/api.php', ...}")
        ensure_rate_limit(requests_per_second)
        wiki = stage(fetch_wiki, "fetch")(root, name, api_urls, concepts, langs)
    logger.info("wiki: %s", ref_from_path(wiki))

    with make_task_runner(task_runner) as runner:
        # 2. align (sharded by concept)
        params = {"world_size": shards, "encoder": align_encoder}
        version = plan(root, f"{name}-align", params, [wiki])
        reports = run_shards(
            runner, stage(align_shard), shards, root=root, wiki=wiki, dataset=f"{name}-align", version=version,
            encoder=align_encoder,
        )  # fmt: skip
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
        ensure_concurrency_limit(ENCODER_LIMIT, encoders_at_once)
        version = plan(root, f"{name}-sig", params, [docs])
        progress = artifacts.Progress(f"{name}-significance-progress", f"significance of {docs_ref}")
        reports = run_shards(
            runner, stage(significance_shard, "significance"), max(1, len(docs_ref.files("documents"))),
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
