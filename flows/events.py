"""Prefect events that carry exact versions from one flow to the next (prefect.yaml's triggers read them).

    wikimix.dataset.committed    resource wikimix.dataset.<dataset>        a dataset version was committed
    wikimix.checkpoint.committed resource wikimix.checkpoint.<run dir>     a training run finished
    wikimix.training.completed   resource wikimix.training.<corpus>        train-all wrote all its checkpoints

Every resource carries the labels `wikimix.corpus` and `wikimix.stage` (wiki, align, docs, sig, checkpoint,
training), so a trigger can `match` a stage of any corpus and template its parameters from the event:
`corpus: "{{ event.payload.corpus }}"`, `version: "{{ event.payload.parents[0].version }}"`.
Emitted inside a flow or task run, an event is also related to that run, its flow and its deployment.
Storage stays Prefect-free: the flows emit after storage commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.events import emit_event

from storage.store import VersionRef, ref_from_path

DATASET_COMMITTED = "wikimix.dataset.committed"
CHECKPOINT_COMMITTED = "wikimix.checkpoint.committed"
TRAINING_COMPLETED = "wikimix.training.completed"


def _version(ref: VersionRef) -> dict[str, str]:
    return {"dataset": ref.dataset, "version": ref.version, "path": ref.path}


def _resource(kind: str, name: str, corpus: str, stage: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"wikimix.{kind}.{name}",
        "prefect.resource.name": name,
        "wikimix.corpus": corpus,
        "wikimix.stage": stage,
    }


def dataset_committed(path: str) -> dict[str, Any]:
    """Announce the committed version at `path` (`<root>/<corpus>-<stage>/<version>`); returns the payload."""
    ref = ref_from_path(path)
    corpus, _, stage = ref.dataset.rpartition("-")
    parents = [_version(VersionRef(ref.root, p["dataset"], p["version"])) for p in ref.manifest()["parents"]]
    payload = {"corpus": corpus, "stage": stage, **_version(ref), "parents": parents}
    emit_event(DATASET_COMMITTED, resource=_resource("dataset", ref.dataset, corpus, stage), payload=payload)
    return payload


def checkpoint_committed(run: str, variant: str, data: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Announce a finished training run (its checkpoint directory `<root>/runs/<corpus>/<name>`)."""
    path = Path(run)
    corpus = path.parent.name
    payload = {"path": str(path), "variant": variant, "data": data, "metrics": metrics}
    emit_event(
        CHECKPOINT_COMMITTED,
        resource=_resource("checkpoint", f"{corpus}.{path.name}", corpus, "checkpoint"),
        payload=payload,
    )
    return payload


def training_completed(corpus: str, version: str, budget: str, runs: dict[str, str]) -> dict[str, Any]:
    """Announce that train-all wrote `runs` ({variant: checkpoint dir}) on the docs `version`."""
    payload = {"corpus": corpus, "version": version, "budget": budget, "runs": sorted(runs.values())}
    emit_event(
        TRAINING_COMPLETED, resource=_resource("training", corpus, corpus, "training"), payload=payload
    )
    return payload
