"""Retries, result cache, rate limit and task runners of flows/policy.py, against a real Prefect server."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectNotFound

from flows.policy import (
    CACHE_POLICY,
    ENCODER_LIMIT,
    TASK_TIMEOUTS,
    WIKI_API_LIMIT,
    encoder_slot,
    ensure_concurrency_limit,
    ensure_rate_limit,
    is_input_error,
    make_task_runner,
    persisted,
    resolve_root,
    retry_policy,
    task_timeouts,
    wiki_api_slot,
)
from flows.server import PrefectServer, ServerError
from wikimix.errors import ConfigError, WikimixError

pytestmark = pytest.mark.prefect

ATTEMPTS: dict[str, int] = {}


@task(**retry_policy(retries=3, backoff_seconds=0.2))
def flaky(name: str, failures: int) -> int:
    ATTEMPTS[name] = ATTEMPTS.get(name, 0) + 1
    if ATTEMPTS[name] <= failures:
        raise ConnectionError(f"transient failure {ATTEMPTS[name]}")
    return ATTEMPTS[name]


@task(**retry_policy(retries=3, backoff_seconds=0.2))
def bad_input(name: str) -> None:
    ATTEMPTS[name] = ATTEMPTS.get(name, 0) + 1
    raise WikimixError("no such title: 'Nonexistent page'")


@flow
def run_flaky(name: str, failures: int):
    return flaky(name, failures, return_state=True)


@flow
def run_bad_input(name: str):
    return bad_input(name, return_state=True)


def test_transient_failures_are_retried_with_backoff(prefect_client):
    start = time.monotonic()
    state = run_flaky("twice", failures=2)
    assert state.is_completed() and state.result() == 3
    assert ATTEMPTS["twice"] == 3
    task_run = prefect_client.read_task_run(state.state_details.task_run_id)
    assert task_run.run_count == 3
    # exponential back-off: 0.2 + 0.4 s before the jitter (Poisson, clamped to +-50%)
    assert time.monotonic() - start >= 0.3


def test_input_errors_fail_at_once(prefect_client):
    state = run_bad_input("bad", return_state=True)
    assert state.is_failed()
    assert ATTEMPTS["bad"] == 1
    with pytest.raises(WikimixError, match="no such title"):
        state.result()


def test_input_error_classification():
    class Response:
        def __init__(self, code):
            self.status_code = code

    class HTTPError(Exception):
        def __init__(self, code):
            self.response = Response(code)

    assert is_input_error(WikimixError("x"))
    assert is_input_error(HTTPError(404))
    assert not is_input_error(HTTPError(429))  # rate limited: wait and retry
    assert not is_input_error(HTTPError(503))
    assert not is_input_error(ConnectionError("reset"))


CALLS: list[str] = []


@task(cache_policy=CACHE_POLICY)
def count_words(root: str, text: str) -> int:
    CALLS.append(text)
    return len(text.split())


@flow
def cached_flow(root: str, texts: list[str]):
    step = persisted(count_words, root)
    return [step(root, t, return_state=True) for t in texts]


def test_unchanged_inputs_hit_the_cache_under_the_data_root(prefect_server, data_root: Path):
    root = resolve_root(str(data_root))
    CALLS.clear()  # other tests run count_words too
    first = cached_flow(root, ["a b c", "d e"])
    assert [s.type.value for s in first] == ["COMPLETED", "COMPLETED"]
    second = cached_flow(root, ["a b c", "x y z w"])
    assert [s.name for s in second] == ["Cached", "Completed"]
    assert [s.result() for s in second] == [3, 4]
    assert CALLS == ["a b c", "d e", "x y z w"]
    stored = list((data_root / ".prefect" / "results").iterdir())
    assert len(stored) == 3  # one result record per distinct cache key


def test_results_persist_under_an_fsspec_data_root(prefect_server):
    import fsspec

    root = resolve_root("memory://wikimix-results-test")
    assert root == "memory://wikimix-results-test"
    first = cached_flow(root, ["one two"])
    second = cached_flow(root, ["one two"])
    assert (first[0].name, second[0].name) == ("Completed", "Cached")
    fs = fsspec.filesystem("memory")
    assert len(fs.ls("/wikimix-results-test/.prefect/results")) == 1


def test_wiki_api_rate_limit_spaces_requests(prefect_client):
    with contextlib.suppress(ObjectNotFound):  # start from no limit: ensure_rate_limit creates it
        prefect_client.delete_global_concurrency_limit_by_name(WIKI_API_LIMIT)

    @flow
    def requests(n: int) -> float:
        ensure_rate_limit(requests_per_second=5.0)
        start = time.monotonic()
        for _ in range(n):
            wiki_api_slot()
        return time.monotonic() - start

    elapsed = requests(10)
    limit = prefect_client.read_global_concurrency_limit_by_name(WIKI_API_LIMIT)
    assert limit.limit == 5 and limit.slot_decay_per_second == 5.0 and limit.active
    # 5 slots burst, then slots come back at 5/s: the last 5 requests wait about 1 s
    assert 0.7 <= elapsed <= 20


def test_rate_limit_set_by_an_operator_is_kept(prefect_client):
    name = f"wikimix-test-operator-limit-{uuid.uuid4().hex[:8]}"  # its own limit: no other test's state
    prefect_client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name=name, limit=3, slot_decay_per_second=0.5, active=True)
    )
    try:

        @flow
        def again():
            ensure_rate_limit(requests_per_second=50.0, name=name)

        again()
        limit = prefect_client.read_global_concurrency_limit_by_name(name)
        assert (limit.limit, limit.slot_decay_per_second, limit.active) == (3, 0.5, True)
    finally:
        prefect_client.delete_global_concurrency_limit_by_name(name)


@task(cache_policy=CACHE_POLICY)
def square(root: str, x: int) -> int:
    return x * x


@flow
def squares_on(root: str, runner: str) -> list[int]:
    step = persisted(square, root)
    with make_task_runner(runner) as pool:
        futures = [pool.submit(step, {"root": root, "x": x}) for x in range(4)]
        return [f.result() for f in futures]


def test_tasks_run_on_a_dask_scheduler_given_by_address(prefect_server, data_root: Path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        assert squares_on(resolve_root(str(data_root)), f"dask:{cluster.scheduler_address}") == [0, 1, 4, 9]
    assert squares_on(resolve_root(str(data_root)), "threads:2") == [0, 1, 4, 9]


def test_bad_task_runner_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown task runner"):
        make_task_runner("ray")
    with pytest.raises(ConfigError, match="threads:N"):
        make_task_runner("threads:many")


def test_server_refuses_a_busy_port(prefect_server, tmp_path: Path):
    with pytest.raises(ServerError, match="in use"):
        PrefectServer(home=tmp_path, port=prefect_server.port).start()


def test_task_timeouts_default_override_and_refuse_unknown_stages():
    assert task_timeouts(None) == TASK_TIMEOUTS
    assert task_timeouts({"significance": 60})["significance"] == 60.0
    with pytest.raises(ConfigError, match="unknown stage"):
        task_timeouts({"align": 10})
    with pytest.raises(ConfigError, match="positive seconds"):
        task_timeouts({"fetch": 0})


def test_a_stage_past_its_timeout_fails_the_build_and_commits_nothing(prefect_server, data_root, monkeypatch):
    import pipeline.dump
    from flows.corpus import build_corpus

    def slow_ingest(*args, **kwargs):
        # Python-level waiting, where Prefect's timeout can interrupt the task's thread. The real ingest can
        # finish inside C code (Parquet writes) before the interrupt lands, most often on a retry, so the
        # outcome would depend on the machine's speed.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
        raise AssertionError("the stage timeout never interrupted the ingest")

    monkeypatch.setattr(pipeline.dump, "ingest_dumps", slow_ingest)
    state = build_corpus(
        name="late", rankers=["stat"], shards=1, timeouts={"ingest": 0.05}, return_state=True
    )
    assert state.is_failed()
    assert "timed out" in str(state.message).lower() or "timeout" in repr(state.data).lower(), state
    assert not any(data_root.glob("late-*/*/manifest.json"))


def test_the_encoder_limit_is_created_once_and_a_shard_holds_one_slot(prefect_client):
    with contextlib.suppress(ObjectNotFound):
        prefect_client.delete_global_concurrency_limit_by_name(ENCODER_LIMIT)
    ensure_concurrency_limit(ENCODER_LIMIT, 1)
    ensure_concurrency_limit(ENCODER_LIMIT, 8)  # an existing limit (set by the operator) is kept
    assert prefect_client.read_global_concurrency_limit_by_name(ENCODER_LIMIT).limit == 1
    with encoder_slot():
        assert prefect_client.read_global_concurrency_limit_by_name(ENCODER_LIMIT).active_slots == 1
    assert prefect_client.read_global_concurrency_limit_by_name(ENCODER_LIMIT).active_slots == 0
    with pytest.raises(ConfigError, match="at least 1 slot"):
        ensure_concurrency_limit(ENCODER_LIMIT, 0)
