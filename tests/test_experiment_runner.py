"""The shared experiment runner without training: run directories and their order, what a fine-tuned arm's
config holds, and the measurement cache's key (checkpoint step + settings). Both protocols' end-to-end
tests (tests/test_experiment.py, tests/test_knowledge_*.py, tests/test_flow_knowledge.py) train through it."""

from __future__ import annotations

import json
from pathlib import Path

from training.experiment_runner import Grid, measured


def grid(tmp_path: Path, **kw) -> Grid:
    return Grid(
        out=tmp_path, seeds=(0, 1), variants=("ar",), arms=("mono", "cs"),
        data={"mono": "m@v1", "cs": "c@v1", "ft": "f@v1"}, tokenizer="byte", budget="smoke",
        overrides={"batch_size": 4, "max_minutes": 3.0}, max_steps=20, **kw,
    )  # fmt: skip


def test_run_directories_base_arms_first(tmp_path):
    with_ft = grid(tmp_path, finetune_steps=30).run_dirs(1, "ar")
    assert list(with_ft) == ["mono", "cs", "mono+ft", "cs+ft"]
    assert with_ft["cs+ft"] == tmp_path / "seed1" / "ar" / "cs-ft"
    flat = grid(tmp_path, variant_dirs=False).run_dirs(0, "ar")
    assert flat == {"mono": tmp_path / "seed0" / "mono", "cs": tmp_path / "seed0" / "cs"}


def test_fine_tuned_arm_config_is_bounded_by_its_steps(tmp_path):
    g = grid(tmp_path, finetune_steps=30)
    base = g.config(0, "ar", "cs")
    ft = g.config(0, "ar", "cs+ft")
    assert (base.data, base.max_steps, base.max_minutes, base.batch_size) == ("c@v1", 20, 3.0, 4)
    assert (ft.data, ft.max_steps, ft.warmup_steps, ft.max_minutes) == ("f@v1", 30, 3, 0.0)
    assert ft.out == str(tmp_path / "seed0" / "ar" / "cs-ft") and ft.test_frac == base.test_frac == 0.0
    assert ft.model == base.model and ft.seed == base.seed == 0


def test_measurements_are_reused_until_the_step_or_settings_change(tmp_path):
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"value": len(calls)}

    (tmp_path / "state.json").write_text(json.dumps({"step": 5, "tokens_seen": 100}))
    first = measured(tmp_path, ["items", 1], compute)
    assert measured(tmp_path, ["items", 1], compute) == first and len(calls) == 1
    assert measured(tmp_path, ["items", 2], compute)["value"] == 2
    (tmp_path / "state.json").write_text(json.dumps({"step": 6, "tokens_seen": 120}))
    assert measured(tmp_path, ["items", 2], compute)["value"] == 3
    assert json.loads((tmp_path / "measurements.json").read_text())["value"] == 3
