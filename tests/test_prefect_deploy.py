"""prefect.yaml on a fresh server: `prefect deploy --all` registers every deployment with its schedule and
trigger, and a process worker started with `--run-once` executes the weekly rebuild, whose completion
triggers training."""

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
    "end-to-end": "end-to-end",
    "cs-knowledge": "cs-knowledge",
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


def test_training_is_triggered_by_a_completed_rebuild(deployed, prefect_client):
    target = deployment(prefect_client, "after-rebuild")
    [automation] = [a for a in prefect_client.read_automations() if a.name.startswith("after-rebuild")]
    trigger = automation.trigger
    assert trigger.expect == {"prefect.flow-run.Completed"}
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
    assert triggered, "the Completed event of the rebuild did not schedule a train-all run"
    assert triggered[0].parameters["corpus"] == "sample"
