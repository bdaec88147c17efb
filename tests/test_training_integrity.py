"""Training integrity: non-finite values stop a run without saving, --out must be a wikimix run (or new),
data versions are pinned at the first start, swapped shards are refused, and corrupt checkpoint files
are one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from storage.store import StorageError, VersionRef, write_version
from tests.fixtures_training import xquad_rows
from training import checkpoint
from training.checkpoint import CheckpointError, load_checkpoint
from training.config import TrainConfig, make_config
from training.trainer import TrainingError, train
from wikimix.errors import ConfigError, WikimixError

torch.set_num_threads(1)
QUIET = {"progress": False, "threads": 1}


def smoke(out: Path, data: str = "synthetic:markov", variant: str = "ar", **overrides) -> TrainConfig:
    return make_config(variant, budget="smoke", data=data, out=str(out), overrides={**QUIET, **overrides})


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """The real entry point in-process: (exit code, stderr lines)."""
    from wikimix.cli import main

    monkeypatch.setattr(sys, "argv", ["wikimix", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err.strip().splitlines()


# ---- non-finite values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lr", "message"), [("inf", "finite"), ("nan", "finite"), ("-inf", "finite"), ("-1", "> 0")]
)
def test_non_finite_or_negative_lr_is_refused_at_config_time(tmp_path, lr, message):
    with pytest.raises(ConfigError, match=f"lr must be .*{message}"):
        smoke(tmp_path / "run", lr=lr)
    with pytest.raises(ConfigError, match="lr must be"):  # a config built in code is validated by train()
        train(TrainConfig(data="synthetic:markov", out=str(tmp_path / "run"), lr=float(lr)))
    assert not (tmp_path / "run").exists()


def test_cli_set_lr_inf_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, lines = run_cli(
        monkeypatch, capsys, "train", "ar", "--data", "synthetic:markov", "--out", str(out), "--budget", "smoke",
        "--set", "lr=inf",
    )  # fmt: skip
    assert code == 2 and len(lines) == 1 and lines[0] == "error: lr must be a finite number, got inf"
    assert not out.exists()


@pytest.mark.parametrize("grad_clip", [1.0, 0.0])
def test_a_diverging_run_stops_with_one_line_and_writes_no_checkpoint(tmp_path, grad_clip):
    # a finite but huge lr: the first step is finite, the weights it makes overflow on the second
    settings = dict(lr="1e10", warmup_steps=0, save_every=1, grad_clip=grad_clip)
    out = tmp_path / "run"
    train(smoke(out, stop_at=1, **settings))
    before = snapshot(out)
    assert checkpoint.read_state(out)["step"] == 1
    with pytest.raises(TrainingError, match="non-finite training values at step 2") as err:
        train(smoke(out, **settings))
    assert "\n" not in str(err.value) and str(out) in str(err.value)
    assert snapshot(out) == before  # no checkpoint, stage or metrics record from the bad step
    assert not (out / checkpoint.STAGE).exists()


# ---- --out -------------------------------------------------------------------------------------------


def test_out_holding_someone_elses_config_is_refused_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "my-model"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "n_embd": 768}))
    (out / "state.json").write_text("{}")
    (out / checkpoint.STAGE).mkdir()  # recovery must not clean up a stranger's directory either
    (out / checkpoint.STAGE / "notes.txt").write_text("mine")
    before = snapshot(out)
    with pytest.raises(CheckpointError, match="is not a wikimix run directory"):
        train(smoke(out, max_steps=2))
    code, lines = run_cli(
        monkeypatch,
        capsys,
        "train",
        "ar",
        "--data",
        "synthetic:markov",
        "--out",
        str(out),
        "--budget",
        "smoke",
    )
    assert code == 2 and len(lines) == 1 and "is not a wikimix run directory" in lines[0]
    with pytest.raises(CheckpointError, match="is not a wikimix run directory"):
        load_checkpoint(out)
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == [
        ".next",
        "config.json",
        "state.json",
    ]


def test_out_that_is_a_file_is_refused_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    with pytest.raises(CheckpointError, match="is a file, not a wikimix run directory"):
        train(smoke(out, max_steps=2))
    code, lines = run_cli(monkeypatch, capsys, "generate", "--ckpt", str(out), "--prompt", "x")
    assert code == 2 and len(lines) == 1 and "is a file" in lines[0]
    assert out.read_text() == "keep me"


def test_empty_out_is_used_and_the_run_is_marked(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    train(smoke(out, max_steps=2))
    assert checkpoint.read_run_marker(out)["data"] == "synthetic:markov"
    assert checkpoint.read_state(out)["step"] == 2


def test_a_run_from_before_markers_is_recognised_and_resumes(tmp_path):
    out = tmp_path / "old"
    full = train(smoke(tmp_path / "full", max_steps=4, save_every=0))
    train(smoke(out, max_steps=4, stop_at=2, save_every=0))
    (out / checkpoint.RUN_MARKER).unlink()  # what the code before markers left: config/state/metrics
    assert train(smoke(out, max_steps=4, save_every=0))["loss"] == full["loss"]
    assert checkpoint.read_run_marker(out)["data"] == "synthetic:markov"


# ---- data pinning ------------------------------------------------------------------------------------


def _new_version(data_root: Path, shared_dir: Path, dataset: str = "xq-docs") -> VersionRef:
    rows = xquad_rows(shared_dir, ("en",))
    return write_version(data_root, dataset, {"documents": rows}, num_shards=2)


def test_resume_keeps_the_pinned_data_version(tmp_path, data_root, shared_dir, xquad_docs, capsys):
    out = tmp_path / "run"
    train(smoke(out, data="xq-docs@latest", max_steps=4, stop_at=2))
    pinned = str(xquad_docs)
    assert checkpoint.read_config(out)["train"]["data"] == pinned
    assert checkpoint.read_run_marker(out)["data"] == pinned
    newer = _new_version(data_root, shared_dir)
    capsys.readouterr()

    with pytest.raises(ConfigError, match=f"started on --data {pinned}, not {newer}") as err:
        train(smoke(out, data=str(newer), max_steps=4))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=f"holds a run on --data {pinned}, not other-docs"):
        train(smoke(out, data="other-docs", max_steps=4))

    train(smoke(out, data="xq-docs", max_steps=4))  # unpinned: keeps the pin, says so on one line
    warning = capsys.readouterr().err.strip().splitlines()
    assert warning == [f"warning: {out} resumes on its pinned --data {pinned}, not the newer {newer}"]
    assert checkpoint.read_state(out)["step"] == 4
    assert checkpoint.read_config(out)["train"]["data"] == pinned


def test_resume_keeps_the_pinned_significance_version(tmp_path, data_root, shared_dir, xquad_docs, xquad_sig):
    from tests.fixtures_training import word_significance

    out = tmp_path / "run"
    train(smoke(out, data="xq-docs", significance="xq-sig", variant="mdlm", max_steps=4, stop_at=2))
    assert checkpoint.read_run_marker(out)["significance"] == str(xquad_sig)
    rows = word_significance(xquad_rows(shared_dir))
    newer = write_version(data_root, "xq-sig", {"significance": rows}, parents=[xquad_docs])
    with pytest.raises(ConfigError, match=f"started on --significance {xquad_sig}, not {newer}"):
        train(smoke(out, data="xq-docs", significance=str(newer), variant="mdlm", max_steps=4))
    with pytest.raises(ConfigError, match="holds a run on --significance"):
        train(smoke(out, data="xq-docs", variant="mdlm", max_steps=4))


def test_a_run_from_before_pinning_is_pinned_on_resume(tmp_path, xquad_docs, capsys):
    out = tmp_path / "run"
    train(smoke(out, data="xq-docs", max_steps=4, stop_at=2))
    (out / checkpoint.RUN_MARKER).unlink()
    config = json.loads((out / "config.json").read_text())
    config["train"]["data"] = "xq-docs"  # the code before pinning stored the spec as given
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    train(smoke(out, data="xq-docs", max_steps=4))
    assert "predates data pinning" in capsys.readouterr().err
    assert checkpoint.read_run_marker(out)["data"] == str(xquad_docs)


# ---- shard hashes -----------------------------------------------------------------------------------


def _swap_first_shard(ref: VersionRef, data_root: Path, shared_dir: Path) -> Path:
    """Overwrite ref's first documents shard with a valid shard of other documents."""
    other = _new_version(data_root, shared_dir, "swap-docs")
    target = Path(ref.files("documents")[0])
    shutil.copyfile(other.files("documents")[0], target)
    return target


def test_training_and_evaluation_refuse_a_swapped_shard(tmp_path, data_root, shared_dir, xquad_docs):
    from training.evaluate import EvalConfig, evaluate

    out = tmp_path / "run"
    train(smoke(out, data="xq-docs", max_steps=4, stop_at=2))
    target = _swap_first_shard(xquad_docs, data_root, shared_dir)
    with pytest.raises(StorageError, match="does not match the manifest") as err:
        train(smoke(out, data="xq-docs", max_steps=4))
    assert str(target) in str(err.value) and "\n" not in str(err.value)
    assert checkpoint.read_state(out)["step"] == 2

    cfg = EvalConfig(
        prompt_min=8, prompt_max=16, cont_len=8, max_examples=4, n_generate=1, reference_vocab=300
    )
    with pytest.raises(StorageError, match="does not match the manifest") as err:
        evaluate([out], "xq-docs", tmp_path / "eval", cfg)
    assert str(target) in str(err.value) and not (tmp_path / "eval").exists()


# ---- corrupt checkpoints ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(smoke(out, max_steps=2))
    return out


def _edit_config(edit):
    def apply(run: Path) -> None:
        (run / "config.json").write_text(json.dumps(edit(json.loads((run / "config.json").read_text()))))

    return apply


def _set_in(config: dict, path: tuple[str, ...], value) -> dict:
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda run: (run / "config.json").write_text("{not json"), "corrupt .*config.json"),
        (lambda run: (run / "config.json").write_text("[]"), "expected a JSON object, got list"),
        (_edit_config(lambda c: {k: v for k, v in c.items() if k != "variant"}), "'variant' is missing"),
        (_edit_config(lambda c: {**c, "variant": "gpt5"}), "unknown variant 'gpt5'"),
        (_edit_config(lambda c: {**c, "train": "fast"}), "'train' is missing or not an object"),
        (_edit_config(lambda c: _set_in(c, ("train", "lr"), "fast")), "lr must be of type float"),
        (_edit_config(lambda c: _set_in(c, ("train", "max_steps"), 2.5)), "max_steps must be of type int"),
        (_edit_config(lambda c: _set_in(c, ("model", "n_layers"), "two")), "cannot build the model"),
        (_edit_config(lambda c: _set_in(c, ("model", "warp"), 9)), "no model option"),
        (_edit_config(lambda c: {**c, "vocab_size": None}), "'vocab_size' is missing"),
        (lambda run: (run / "model.safetensors").unlink(), "unreadable checkpoint"),
        (lambda run: (run / "model.safetensors").write_bytes(b"\x00" * 40), "unreadable checkpoint"),
        (lambda run: (run / "state.json").write_text("[1]"), "malformed .*state.json"),
        (lambda run: (run / "tokenizer.json").unlink(), "no tokenizer"),
    ],
)
def test_corrupt_checkpoint_files_are_one_line_errors(
    trained_run, tmp_path, monkeypatch, capsys, corrupt, message
):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    load_checkpoint(run)  # intact before
    corrupt(run)
    with pytest.raises(WikimixError, match=message) as err:
        load_checkpoint(run)
    assert "\n" not in str(err.value)
    code, lines = run_cli(monkeypatch, capsys, "generate", "--ckpt", str(run), "--prompt", "ab")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0]


# ---- a first start that fails on bad input leaves nothing behind ----------------------------------------


def test_failed_first_start_removes_only_what_it_made(tmp_path, data_root):
    write_version(data_root, "void-docs", {"documents": []}, version="v1")
    with pytest.raises(WikimixError):
        train(smoke(tmp_path / "new", data="void-docs"))
    assert not (tmp_path / "new").exists()
    assert not (data_root / "void-docs-tokens").exists()  # no rows, so no token table was stored
    (tmp_path / "mine").mkdir()  # an empty directory the user made stays, and stays empty
    with pytest.raises(WikimixError):
        train(smoke(tmp_path / "mine", data="void-docs"))
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
