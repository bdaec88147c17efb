"""How every wikimix task retries, caches, persists its result, rate-limits the wiki API, and where it runs.

    @task(cache_policy=CACHE_POLICY, **retry_policy())
    def sections_shard(root: str, pages: str, shard: int, num_shards: int) -> str: ...

    @flow
    def build_corpus(..., data_root: str | None = None, task_runner: str = "threads"):
        root = resolve_root(data_root)
        step = persisted(sections_shard, root)          # results + cache records under <root>/.prefect
        with make_task_runner(task_runner) as runner:   # threads | dask | dask:tcp://host:8786
            futures = [runner.submit(step, {...}) for shard in range(n)]

- Cache keys: the task's inputs (dataset version paths, which are immutable, and parameters) plus its
  source code (Prefect's `INPUTS + TASK_SOURCE`) plus the source of the packages it wraps
  (`PackageSource`), so an unchanged rebuild reuses every step's output and a code change reruns the
  steps it can affect. `refresh_cache=True` on a flow recomputes everything.
- Results persist under the data root (`<root>/.prefect/results`), a local path or an fsspec URL, so the
  cache travels with the data it describes and a worker on another machine sees it.
- Retries: exponential back-off with jitter; errors caused by bad input (WikimixError, HTTP 4xx other
  than 408/429) fail at once, since retrying cannot fix them.
- `wiki-api`: a global concurrency limit with slot decay: every wiki API request takes one slot through
  `rate_limit()`; the slots decay at the configured rate, so all flows on all workers share one request
  budget per second. Tune it in the UI (Concurrency page) or `prefect gcl update wiki-api ...`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger
from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists
from prefect.filesystems import RemoteFileSystem
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from storage.store import data_root
from wikimix.errors import ConfigError, WikimixError


@dataclass
class PackageSource(CachePolicy):
    """Cache key part: a hash of the source files of the packages a task wraps (pipeline/, training/).

    TASK_SOURCE sees only the thin task function in flows/; the work happens in those packages, so an
    edit there must invalidate the cache too (committed or not).
    """

    packages: tuple[str, ...] = ("pipeline", "storage")

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str | None:
        return _source_hash(self.packages)


@functools.cache
def _source_hash(packages: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for package in packages:
        base = Path(importlib.import_module(package).__file__).parent
        for path in sorted(base.rglob("*.py")):
            digest.update(str(path.relative_to(base)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


CACHE_POLICY = INPUTS + TASK_SOURCE + PackageSource()
TRAINING_CACHE_POLICY = INPUTS + TASK_SOURCE + PackageSource(packages=("training", "storage"))
WIKI_API_LIMIT = "wiki-api"
ENCODER_LIMIT = "encoder"
# Seconds a task of each stage may run before Prefect fails it (build-corpus's `timeouts` overrides them).
TASK_TIMEOUTS: dict[str, float] = {"fetch": 6 * 3600.0, "ingest": 2 * 3600.0, "significance": 4 * 3600.0}
RESULTS_DIR = ".prefect/results"


# --- retries -----------------------------------------------------------------------------------------


def is_input_error(exc: BaseException) -> bool:
    """True for failures that a retry cannot fix: wikimix input errors and HTTP 4xx (but 408/429)."""
    if isinstance(exc, WikimixError):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def retry_unless_input_error(task: Task, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry transient failures, never input errors."""
    try:
        state.result()
    except Exception as exc:
        return not is_input_error(exc)
    return True


def retry_policy(retries: int = 3, backoff_seconds: float = 2.0, jitter: float = 0.5) -> dict[str, Any]:
    """Task options: `retries` attempts after the first, delays backoff * 2**n, Poisson jitter."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=backoff_seconds),
        "retry_jitter_factor": jitter,
        "retry_condition_fn": retry_unless_input_error,
    }


# --- result persistence under the data root ----------------------------------------------------------


def resolve_root(root: str | None) -> str:
    """The data root as an absolute path (local) or the URL unchanged (fsspec: s3://, gs://, ...)."""
    root = data_root(root)
    return root if "://" in root else str(Path(root).resolve())


def result_storage(root: str) -> Path | str:
    """`<root>/.prefect/results`: a Path for a local root; for a URL, a saved RemoteFileSystem block's slug."""
    base = f"{root.rstrip('/')}/{RESULTS_DIR}"
    if "://" not in root:
        return Path(base)
    name = "wikimix-results-" + hashlib.sha256(base.encode()).hexdigest()[:12]
    RemoteFileSystem(basepath=base).save(name, overwrite=True)
    return f"remote-file-system/{name}"


def persisted(task: Task, root: str) -> Task:
    """The task with its result (and cache record) persisted under the data root."""
    return task.with_options(result_storage=result_storage(root), persist_result=True)


# --- where tasks run ---------------------------------------------------------------------------------


def make_task_runner(spec: str = "threads") -> TaskRunner:
    """`threads` (default), `threads:N`, `dask` (a local cluster), or `dask:ADDRESS` (a running scheduler)."""
    kind, _, arg = spec.partition(":")
    if kind == "threads":
        if arg and not arg.isdigit():
            raise ConfigError(f"task runner {spec!r}: use threads:N with N a number of threads")
        return ThreadPoolTaskRunner(max_workers=int(arg) if arg else None)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if arg:
            return DaskTaskRunner(address=arg)
        workers = max(1, (os.cpu_count() or 2) // 2)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    raise ConfigError(f"unknown task runner {spec!r}: use threads, threads:N, dask, or dask:tcp://HOST:PORT")


# --- the wiki API request budget ---------------------------------------------------------------------


def ensure_rate_limit(requests_per_second: float, name: str = WIKI_API_LIMIT) -> None:
    """Create the global rate limit if missing. An existing one is left as the operator set it."""
    if requests_per_second <= 0:
        raise ConfigError(f"requests per second must be > 0, got {requests_per_second}")
    limit = GlobalConcurrencyLimitCreate(
        name=name,
        limit=max(1, round(requests_per_second)),  # burst: one second's worth of requests
        slot_decay_per_second=float(requests_per_second),
        active=True,
    )
    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(limit)
        current = client.read_global_concurrency_limit_by_name(name)
    with contextlib.suppress(RuntimeError):  # outside a run: no run logger
        get_run_logger().info(
            "%s: %d slots, decaying %.2f/s", name, current.limit, current.slot_decay_per_second
        )


def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit `name` with `limit` slots if missing (an existing one is kept)."""
    if limit < 1:
        raise ConfigError(f"concurrency limit {name!r} needs at least 1 slot, got {limit}")
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=limit, active=True)
        )


def encoder_slot():
    """Hold one `encoder` slot: an encoder uses every core, so shards must not load one each at once."""
    return concurrency(ENCODER_LIMIT, occupy=1, strict=True)


def task_timeouts(overrides: dict[str, float] | None) -> dict[str, float]:
    """TASK_TIMEOUTS with `overrides` ({stage: seconds}); ConfigError on an unknown stage or a bad value."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(TASK_TIMEOUTS))
    if unknown:
        raise ConfigError(f"timeouts: unknown stage(s) {unknown}; use {sorted(TASK_TIMEOUTS)}")
    bad = {k: v for k, v in overrides.items() if not isinstance(v, int | float) or v <= 0}
    if bad:
        raise ConfigError(f"timeouts must be positive seconds, got {bad}")
    return {**TASK_TIMEOUTS, **{k: float(v) for k, v in overrides.items()}}


def wiki_api_slot() -> None:
    """Block until the shared wiki request budget allows one more API request."""
    rate_limit(WIKI_API_LIMIT, occupy=1)
