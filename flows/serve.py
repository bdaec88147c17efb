"""Every deployment of prefect.yaml served from one process (`prefect.serve`): no work pool, no worker.

    wikimix serve --data ./data          # PREFECT_API_URL names the server

prefect.yaml stays the one description of the deployments: this module reads it (YAML anchors and merge
keys included) and turns each entry into `flow.to_deployment(...)` with its parameters, schedules,
concurrency limit and triggers, exactly as `prefect deploy --all` registers them, minus the work pool.
The served flows run in subprocesses of this process, in this checkout, with its $WIKIMIX_DATA.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentTriggerTypes
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from pydantic import TypeAdapter

from wikimix.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
PREFECT_YAML = REPO / "prefect.yaml"


def load_flow(entrypoint: str) -> Flow:
    """The flow object of `path/to/file.py:function` (a module of this checkout)."""
    path, _, name = entrypoint.partition(":")
    if not path.endswith(".py") or not name:
        raise ConfigError(f"entrypoint {entrypoint!r}: use path/to/file.py:flow_function")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    found = getattr(module, name, None)
    if not isinstance(found, Flow):
        raise ConfigError(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return found


def _schedule(spec: dict[str, Any]) -> Cron:
    if "cron" not in spec:
        raise ConfigError(f"prefect.yaml: only cron schedules are served, got {spec}")
    return Cron(spec["cron"], timezone=spec.get("timezone"), active=spec.get("active", True))


def _triggers(deployment: str, specs: list[dict[str, Any]]) -> list:
    """Trigger specs as `prefect deploy` reads them, with the same automation names."""
    adapter = TypeAdapter(DeploymentTriggerTypes)
    return [
        adapter.validate_python({"name": f"{deployment}__automation_{i}", **spec})
        for i, spec in enumerate(specs, start=1)
    ]


def deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """One RunnerDeployment per entry of prefect.yaml's `deployments`."""
    config = yaml.safe_load(path.read_text())
    out = []
    for entry in config.get("deployments") or []:
        name = entry["name"]
        limit = entry.get("concurrency_limit")
        if isinstance(limit, dict):
            limit = ConcurrencyLimitConfig(**limit)
        out.append(
            load_flow(entry["entrypoint"]).to_deployment(
                name=name,
                description=entry.get("description"),
                tags=entry.get("tags"),
                parameters=entry.get("parameters") or {},
                schedules=[_schedule(s) for s in entry.get("schedules") or []],
                concurrency_limit=limit,
                triggers=_triggers(name, entry.get("triggers") or []),
            )
        )
    return out


def replace_pool_deployments(served: list[RunnerDeployment]) -> list[str]:
    """Delete the work-pool deployments (`prefect deploy`) that the served ones replace; their names.

    A served deployment updates the one of the same name in place, but the pull step and storage path
    of a pool deployment would survive the update and point the served runs at a checkout they do not
    have; its flow runs stay in the history."""
    replaced = []
    with get_client(sync_client=True) as client:
        for deployment in served:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                client.delete_deployment(existing.id)
                replaced.append(name)
    return replaced


def serve_all(limit: int | None = None, path: Path = PREFECT_YAML) -> None:
    """Register and serve every deployment until interrupted (schedules paused on shutdown)."""
    served = deployments(path)
    for name in replace_pool_deployments(served):
        print(f"replacing the work-pool deployment {name} by a served one")
    serve(*served, limit=limit)
