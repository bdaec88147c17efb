"""prefect.yaml on a fresh server: `prefect deploy --all` registers every deployment with its schedule and
triggers; a process worker started with `--run-once` executes the weekly rebuild, whose commit triggers
training on exactly the version it wrote; two rebuilds in a row each trigger training on their own version,
and a triggered training's completion triggers evaluation of exactly its checkpoints. Runs are named from
their parameters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

PREFECT = str(Path(sys.executable).with_name("prefect"))
DEPLOYMENTS = {
    "weekly-rebuild": "build-corpus",
    "build-corpus": "build-corpus",
    "after-rebuild": "train-all",
    "train-all": "train-all",
    "train-variant": "train-variant",
    "evaluate": "evaluate",
    "after-training": "evaluate",
    "end-to-end": "end-to-end",
    "cs-knowledge": "cs-knowledge",
    "build-eval-corpus": "build-eval-corpus",
}


def prefect_cli(*args: str, env: dict | None = None, timeout: float = 180) -> str:
    result = subprocess.run(
        [PREFECT, *args], cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def deployed(prefect_server):
    """The documented commands: create the process pool, deploy everything in prefect.yaml."""
    prefect_cli("work-pool", "create", "wikimix", "--type", "process")
    prefect_cli("--no-prompt", "deploy", "--all")
    return prefect_server


def deployment(client, name: str):
    flow_name = DEPLOYMENTS[name]
    return client.read_deployment_by_name(f"{flow_name}/{name}")


def test_deploy_all_registers_every_deployment(deployed, prefect_client):
    found = {d.name for d in prefect_client.read_deployments()}
    assert set(DEPLOYMENTS) <= found
    for name in DEPLOYMENTS:
        dep = deployment(prefect_client, name)
        assert dep.work_pool_name == "wikimix"
        assert dep.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $WIKIMIX_REPO }}"}}
        ]
    # typed parameters: the schema comes from the flow signatures
    schema = deployment(prefect_client, "build-corpus").parameter_openapi_schema["properties"]
    assert schema["shards"]["type"] == "integer"
    assert schema["source"]["enum"] == ["dumps", "wiki"]
    assert deployment(prefect_client, "train-variant").parameters["variant"] == "ar"


def test_weekly_rebuild_schedule_and_concurrency(deployed, prefect_client):
    dep = deployment(prefect_client, "weekly-rebuild")
    [schedule] = dep.schedules
    assert schedule.active
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * 1", "Europe/Berlin")
    assert dep.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert dep.global_concurrency_limit.limit == 1
    assert not deployment(prefect_client, "build-corpus").schedules


def test_training_is_triggered_by_the_rebuilds_commit(deployed, prefect_client):
    target = deployment(prefect_client, "after-rebuild")
    [automation] = [a for a in prefect_client.read_automations() if a.name.startswith("after-rebuild")]
    trigger = automation.trigger
    assert trigger.expect == {"wikimix.dataset.committed"}
    assert trigger.match.root == {"prefect.resource.id": "wikimix.dataset.*", "wikimix.stage": "sig"}
    assert trigger.match_related.root == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "weekly-rebuild",
    }
    [action] = automation.actions
    assert action.type == "run-deployment" and action.deployment_id == target.id


def test_worker_runs_the_rebuild_and_its_completion_triggers_training(deployed, prefect_client, tmp_path):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter

    rebuild = deployment(prefect_client, "weekly-rebuild")
    run = prefect_client.create_flow_run_from_deployment(
        rebuild.id, parameters={"name": "deployed", "rankers": ["stat"], "shards": 1}
    )
    data = tmp_path / "data"
    worker_env = {"WIKIMIX_REPO": str(REPO), "WIKIMIX_DATA": str(data)}
    prefect_cli("worker", "start", "--pool", "wikimix", "--run-once", env=worker_env, timeout=300)

    state = prefect_client.read_flow_run(run.id).state
    assert state.is_completed(), state
    assert (data / "deployed-sig").is_dir() and (data / "deployed-docs").is_dir()

    after = deployment(prefect_client, "after-rebuild")
    flt = DeploymentFilter(id=DeploymentFilterId(any_=[after.id]))
    deadline = time.monotonic() + 60
    triggered = []
    while not triggered and time.monotonic() < deadline:
        triggered = prefect_client.read_flow_runs(deployment_filter=flt, flow_run_filter=FlowRunFilter())
        time.sleep(1)
    assert triggered, "the commit event of the rebuild did not schedule a train-all run"
    docs_version = run_result_version(data, "deployed-docs")
    assert (triggered[0].parameters["corpus"], triggered[0].parameters["version"]) == (
        "deployed",
        docs_version,
    )
    delete_runs(prefect_client, triggered)


def run_result_version(data: Path, dataset: str) -> str:
    [version] = [p.name for p in (data / dataset).iterdir() if (p / "manifest.json").is_file()]
    return version


def delete_runs(client, runs) -> None:
    """Triggered runs this module does not execute: gone, so no later worker picks them up."""
    for run in runs:
        client.delete_flow_run(run.id)


def runs_of(client, name: str, expected: int, timeout: float = 60) -> list:
    """The flow runs of deployment `name`, waiting until there are `expected` of them."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    flt = DeploymentFilter(id=DeploymentFilterId(any_=[deployment(client, name).id]))
    deadline = time.monotonic() + timeout
    while True:
        runs = client.read_flow_runs(deployment_filter=flt)
        if len(runs) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def stored_event(client, name: str, resource_prefix: str, path: str, timeout: float = 60):
    """The event `name` whose payload path is `path`, once the server has stored it (it writes in batches)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from flows.server import flush_to_server

    flush_to_server()  # this process sends events in batches too
    flt = EventFilter(
        event=EventNameFilter(name=[name]), resource=EventResourceFilter(id_prefix=[resource_prefix])
    )
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in client.read_events(flt, limit=50).events if e.payload.get("path") == path]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, (name, path, found)
            return found[0]
        time.sleep(1)


def run_deployment_here(client, name: str, flow, parameters: dict | None = None, flow_run=None):
    """Execute a run of deployment `name` in this process (as a worker would, without its subprocess)."""
    from prefect.flow_engine import run_flow

    if flow_run is None:
        flow_run = client.create_flow_run_from_deployment(deployment(client, name).id, parameters=parameters)
    result = run_flow(flow, flow_run=flow_run, parameters=parameters)  # raises when the run fails
    finished = client.read_flow_run(flow_run.id)
    assert finished.state.is_completed(), finished.state
    return finished, result


def test_two_rebuilds_each_train_their_own_version_and_training_triggers_evaluation(
    deployed, prefect_client, tmp_path, monkeypatch
):
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    from flows.corpus import build_corpus
    from flows.train import train_all

    monkeypatch.setenv("WIKIMIX_DATA", str(tmp_path / "data"))
    for run in runs_of(prefect_client, "after-rebuild", 0, timeout=0):
        prefect_client.delete_flow_run(run.id)  # earlier tests' triggered runs
    builds = []
    for seed in (0, 1):  # a new seed: new documents and significance versions, the wiki reused
        params = {"name": "events", "rankers": ["stat"], "shards": 1, "seed": seed, "max_chars": 500}
        builds.append(run_deployment_here(prefect_client, "weekly-rebuild", build_corpus, params))
    assert [run.name for run, _ in builds] == ["build-corpus/events"] * 2
    docs_versions = [refs["docs"].rsplit("/", 1)[1] for _, refs in builds]
    assert docs_versions[0] != docs_versions[1]
    task_names = {
        t.name
        for t in prefect_client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[builds[0][0].id]))
        )
    }
    assert {
        "ingest/events",
        "align/rank-0-of-1",
        "significance/rank-0-of-1",
        "commit/events-sig",
    } <= task_names

    trainings = runs_of(prefect_client, "after-rebuild", 2)
    assert sorted((r.parameters["corpus"], r.parameters["version"]) for r in trainings) == sorted(
        ("events", v) for v in docs_versions
    )
    # the first rebuild's training, one variant to keep it short: its completion triggers evaluation
    first = next(r for r in trainings if r.parameters["version"] == docs_versions[0])
    others = [r for r in trainings if r.id != first.id]
    delete_runs(prefect_client, others)
    params = {**first.parameters, "variants": ["ar"], "overrides": {"val_frac": 0.2, "test_frac": 0.2}}
    trained, runs = run_deployment_here(prefect_client, "after-rebuild", train_all, params, flow_run=first)
    assert trained.name == "train-all/events-smoke"
    [train_task] = [
        t
        for t in prefect_client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[trained.id]))
        )
        if t.name.startswith("train/")
    ]
    assert train_task.name == "train/ar-smoke-seed0"
    # the events themselves, as the Event Feed shows them
    sig_event = stored_event(
        prefect_client, "wikimix.dataset.committed", "wikimix.dataset.events-", builds[0][1]["sig"]
    )
    assert (
        sig_event.resource.id == "wikimix.dataset.events-sig" and sig_event.resource["wikimix.stage"] == "sig"
    )
    assert sig_event.payload["parents"] == [
        {"dataset": "events-docs", "version": docs_versions[0], "path": builds[0][1]["docs"]}
    ]
    assert "weekly-rebuild" in {r.get("prefect.resource.name") for r in sig_event.related}
    checkpoint = stored_event(
        prefect_client, "wikimix.checkpoint.committed", "wikimix.checkpoint.events.", runs["ar"]
    )
    assert (checkpoint.payload["variant"], checkpoint.payload["data"]) == (
        "ar",
        f"events-docs@{docs_versions[0]}",
    )
    assert checkpoint.resource["wikimix.corpus"] == "events"

    [evaluation] = runs_of(prefect_client, "after-training", 1)
    assert evaluation.parameters["runs"] == [runs["ar"]]
    assert (evaluation.parameters["corpus"], evaluation.parameters["version"]) == ("events", docs_versions[0])
    assert evaluation.parameters["budget"] == "smoke"
    delete_runs(prefect_client, [evaluation])
