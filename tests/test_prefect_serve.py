"""`wikimix serve` on the session server: one process registers every deployment of prefect.yaml with its
schedule, concurrency limit and triggers (no work pool), runs a flow run created from a deployment, and
stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

WIKIMIX = Path(sys.executable).with_name("wikimix")


def served_deployments(client, since: datetime) -> dict[str, object]:
    """Deployments registered (or updated, when `prefect deploy` made them before) since `since`."""
    return {d.name: d for d in client.read_deployments() if d.updated and d.updated >= since}


@pytest.mark.timeout(600)
def test_serve_registers_every_deployment_runs_one_and_stops(prefect_server, prefect_client, tmp_path):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    expected = {d["name"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    data = tmp_path / "data"
    started = datetime.now(UTC)
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(WIKIMIX), "serve", "--data", str(data)], cwd=tmp_path, env=os.environ.copy(), stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while set(served_deployments(prefect_client, started)) < expected and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        served = served_deployments(prefect_client, started)
        assert set(served) >= expected, (tmp_path / "serve.log").read_text()[-3000:]

        # served, not on a pool: a `prefect deploy` of the same name earlier in the session is replaced
        assert all(served[name].work_pool_name is None for name in expected)
        rebuild = served["weekly-rebuild"]
        [schedule] = rebuild.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * 1", "Europe/Berlin")
        assert schedule.active
        assert rebuild.global_concurrency_limit.limit == 1
        assert rebuild.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        automations = {a.name: a for a in prefect_client.read_automations()}
        for name in ("after-rebuild", "after-training"):
            automation = automations[f"{name}__automation_1"]
            [action] = automation.actions
            assert action.deployment_id == served[name].id
            assert "{{ event.payload.corpus }}" in str(action.parameters)

        # a run created from a served deployment is picked up and executed by the serving process
        run = prefect_client.create_flow_run_from_deployment(
            served["build-corpus"].id,
            parameters={"name": "served", "rankers": ["stat"], "shards": 1, "max_chars": 500},
        )
        deadline = time.monotonic() + 300
        while not prefect_client.read_flow_run(run.id).state.is_final() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(2)
        finished = prefect_client.read_flow_run(run.id)
        assert finished.state.is_completed(), (finished.state, (tmp_path / "serve.log").read_text()[-3000:])
        assert finished.name == "build-corpus/served"
        assert (data / "served-sig").is_dir()
        flt = DeploymentFilter(id=DeploymentFilterId(any_=[served["after-rebuild"].id]))
        triggered = prefect_client.read_flow_runs(deployment_filter=flt)
        assert not [r for r in triggered if r.parameters.get("corpus") == "served"], "only rebuilds train"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert code in (0, 130, -signal.SIGINT), (code, (tmp_path / "serve.log").read_text()[-3000:])
