"""`wikimix experiment knowledge` and the Wikipedia `wikimix experiment --cs ...` side by side: both routes
parse, bad input is one `error:` line with exit 2, and a tiny knowledge run prints its report and headline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def wikimix(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WIKIMIX_DATA": str(cwd / "data"), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "wikimix.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args,says",
    [
        (("experiment", "knowledge", "--budget", "nosuch"), "unknown budget"),
        (("experiment", "knowledge", "--variants", "sdd"), "variants must be among"),
        (("experiment", "knowledge", "--finetune-lang", "xx"), "finetune_lang"),
        (("experiment", "nosuch"), "unknown experiment"),
        (("experiment", "--out", "x"), "needs --cs"),
        (
            ("experiment", "--cs", "nosuch-docs", "--out", "x"),
            "nosuch-docs",
        ),  # the Wikipedia route still runs
    ],
)
def test_bad_input_on_both_routes(tmp_path, args, says):
    proc = wikimix(*args, cwd=tmp_path, timeout=180)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert says in errors[0], errors[0]
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_knowledge_experiment_runs_from_the_cli(tmp_path):
    out = tmp_path / "kx"
    proc = wikimix("experiment", "knowledge", "--budget", "smoke", "--seeds", "0", "--variants", "ar",
                   "--max-steps", "4", "--set", "threads=1", "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("xling_cloze_gain[ar]=")
    report = (out / "knowledge.md").read_text()
    for arm in ("mono", "parallel", "cs", "cs-fixed", "cs+ft"):
        assert f"| ar | {arm} | heldout |" in report
    assert (out / "knowledge.png").stat().st_size > 1000 and (out / "kb.json").is_file()
