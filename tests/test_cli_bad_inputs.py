"""Bad input through the installed `wikimix` command: exit 2, one `error:` line, no traceback, nothing lost.

Each case runs the real console script in a subprocess (the entry point users run, not a test runner that
bypasses it) inside one prepared world: a data root with committed datasets, trained runs, a foreign
directory, plain files and sentinels. Every file of the world is hashed before and after each case; a
case may change nothing at all, so a failed step that still commits, deletes or overwrites shows here.

    .venv/bin/python -m pytest tests/test_cli_bad_inputs.py -q
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.dump import ingest_dumps
from storage.store import write_version

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "wiki"
WIKIMIX = Path(sys.executable).with_name("wikimix")
OWN_CONFIG = '{"my": "own experiment settings"}\n'

DOCS = [
    {
        "doc_id": f"doc-{i}",
        "concept": f"concept-{i % 3}",
        "langs": ["en", "de", "es"],
        "granularity": "sentence",
        "text": "The river flows east. Der Fluss mündet ins Meer. El río es largo. " * (3 + i),
    }
    for i in range(6)
]


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    says: str = ""  # a fragment the error line must contain (case-insensitive)
    may_write: str = ""  # a path prefix the failed command may leave files under, never a manifest


def _train_tiny(variant: str, out: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [str(WIKIMIX), "train", variant, "--data", "synthetic:markov", "--out", str(out)]
        + ["--budget", "smoke", "--max-steps", "2"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def _dump(lang_attr: str, dbname: str) -> str:
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
        f'version="0.11" xml:lang="{lang_attr}"><siteinfo><sitename>W</sitename>'
        f"<dbname>{dbname}</dbname></siteinfo>"
        "<page><title>Danube</title><ns>0</ns><id>1</id><revision><id>2</id>"
        "<text>The '''Danube''' is a river. It flows east.</text></revision></page></mediawiki>\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files every case runs against; see the module docstring."""
    w = tmp_path_factory.mktemp("world")
    data = w / "data"
    env = {**os.environ, "WIKIMIX_DATA": str(data)}
    write_version(data, "tiny-docs", {"documents": DOCS}, version="v1")
    write_version(data, "empty-docs", {"documents": []}, version="v1")
    write_version(data, "empty-wiki", {"pages": [], "sections": [], "fetch_log": []}, version="v1")
    write_version(data, "bad-docs", {"documents": DOCS}, version="v1")
    (data / "bad-docs" / "v2").mkdir()
    (data / "bad-docs" / "v2" / "manifest.json").write_text("{}")
    (data / "bad-docs" / "v3").mkdir()
    (data / "bad-docs" / "v3" / "manifest.json").write_text("[not json")
    ingest_dumps(SAMPLES, SAMPLES / "concepts.tsv", root=data, name="ok", langs=["de", "en", "es"])

    runs = w / "runs"
    _train_tiny("ar", runs / "ar", env)
    _train_tiny("mdlm", runs / "mdlm", env)
    shutil.copytree(runs / "ar", runs / "corrupt-config")
    (runs / "corrupt-config" / "config.json").write_text("{not json")
    shutil.copytree(runs / "ar", runs / "shape-config")
    (runs / "shape-config" / "config.json").write_text('["a", "list"]')
    shutil.copytree(runs / "ar", runs / "corrupt-weights")
    (runs / "corrupt-weights" / "model.safetensors").write_bytes(b"\x00" * 64)
    (runs / "foreign").mkdir()
    (runs / "foreign" / "config.json").write_text(OWN_CONFIG)
    (w / "afile.txt").write_text("a user's file\n")

    for name, lang, db in (("dotdot", "..", "enwiki"), ("slash", "en/../../x", "enwiki")):
        (w / "dumps" / name).mkdir(parents=True)
        (w / "dumps" / name / "enwiki-sample.xml").write_text(_dump(lang, db))
    (w / "dumps" / "empty").mkdir()
    (w / "concepts-bad.tsv").write_text("this is not\ta concept table\n")
    (w / "concepts-none.tsv").write_text(
        "concept\tqid\tlang\ttitle\tpage_id\trev_id\tchars\nNowhere\t\ten\tNo such page\t1\t1\t1\n"
    )
    (w.parent / "sentinel-beside-world.txt").write_text("must survive\n")
    return w


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir') of everything under root and the sentinel beside it."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if "__pycache__" in rel:
            continue
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    sentinel = root.parent / "sentinel-beside-world.txt"
    out["../sentinel"] = hashlib.sha256(sentinel.read_bytes()).hexdigest() if sentinel.exists() else "gone"
    return out


R = "{runs}"
D = "{data}"
CASES = [
    # usage errors from typer / click
    Case("unknown-option", ("--bogus",), "no such option"),
    Case("unknown-command", ("nope",), "no such command"),
    Case("train-missing-options", ("train", "ar"), "missing option"),
    Case(
        "generate-int-not-int",
        ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--max-new-tokens", "abc"),
        "max-new-tokens",
    ),
    Case("shards-unknown-sub", ("shards", "lsx"), "no such command"),
    Case("wiki-up-missing", ("wiki", "up"), "missing option"),
    # generate
    Case(
        "generate-negative-tokens",
        ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--max-new-tokens", "-1"),
        ">= 1",
    ),
    Case(
        "generate-zero-tokens",
        ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--max-new-tokens", "0"),
        ">= 1",
    ),
    Case(
        "generate-past-max-len",
        ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--max-new-tokens", "100000"),
        "max_len",
    ),
    Case("generate-empty-prompt", ("generate", "--ckpt", f"{R}/ar", "--prompt", ""), "empty prompt"),
    Case("generate-missing-ckpt", ("generate", "--ckpt", f"{R}/nope", "--prompt", "x"), "no checkpoint"),
    Case("generate-ckpt-is-file", ("generate", "--ckpt", "{world}/afile.txt", "--prompt", "x")),
    Case("generate-corrupt-config", ("generate", "--ckpt", f"{R}/corrupt-config", "--prompt", "x"), "config"),
    Case(
        "generate-config-wrong-shape", ("generate", "--ckpt", f"{R}/shape-config", "--prompt", "x"), "config"
    ),
    Case("generate-corrupt-weights", ("generate", "--ckpt", f"{R}/corrupt-weights", "--prompt", "x")),
    Case(
        "generate-bad-device", ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--device", "tpu"), "device"
    ),
    Case("generate-bad-top-p", ("generate", "--ckpt", f"{R}/ar", "--prompt", "x", "--top-p", "0"), "top-p"),
    Case(
        "generate-unknown-sampler",
        ("generate", "--ckpt", f"{R}/mdlm", "--prompt", "x", "--sampler", "bogus"),
        "sampler",
    ),
    Case(
        "generate-zero-steps", ("generate", "--ckpt", f"{R}/mdlm", "--prompt", "x", "--steps", "0"), "steps"
    ),
    # train
    Case(
        "train-unknown-variant", ("train", "gpt9", "--data", "synthetic:markov", "--out", f"{R}/new"), "gpt9"
    ),
    Case(
        "train-lr-inf",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--set", "lr=inf"),
        "lr",
    ),
    Case(
        "train-lr-nan",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--lr", "nan"),
        "lr",
    ),
    Case(
        "train-unknown-field",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--set", "nosuch=1"),
        "nosuch",
    ),
    Case(
        "train-set-not-kv",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--set", "lr"),
        "lr",
    ),
    Case(
        "train-unknown-budget",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--budget", "huge"),
        "huge",
    ),
    Case(
        "train-bad-precision",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/new", "--precision", "fp8"),
        "fp8",
    ),
    Case(
        "train-out-foreign-dir",
        ("train", "ar", "--data", "synthetic:markov", "--out", f"{R}/foreign", "--budget", "smoke"),
        "foreign",
    ),
    Case(
        "train-out-is-file",
        ("train", "ar", "--data", "synthetic:markov", "--out", "{world}/afile.txt", "--budget", "smoke"),
    ),
    Case(
        "train-missing-dataset",
        ("train", "ar", "--data", "nosuch-docs", "--out", f"{R}/new", "--budget", "smoke"),
        "nosuch-docs",
    ),
    Case(
        "train-dataset-path-name",
        ("train", "ar", "--data", "../../etc", "--out", f"{R}/new", "--budget", "smoke"),
    ),
    Case(
        "train-missing-version",
        ("train", "ar", "--data", "tiny-docs@v9", "--out", f"{R}/new", "--budget", "smoke"),
        "v9",
    ),
    Case(
        "train-empty-docs",
        ("train", "ar", "--data", "empty-docs", "--out", f"{R}/new", "--budget", "smoke"),
        "empty-docs",
    ),
    # evaluate
    Case(
        "evaluate-missing-ckpt",
        ("evaluate", "--ckpt", f"{R}/nope", "--data", "tiny-docs", "--out", f"{R}/eval"),
    ),
    Case(
        "evaluate-corrupt-ckpt",
        ("evaluate", "--ckpt", f"{R}/corrupt-config", "--data", "tiny-docs", "--out", f"{R}/eval"),
    ),
    Case(
        "evaluate-out-is-file",
        ("evaluate", "--ckpt", f"{R}/ar", "--data", "tiny-docs", "--out", "{world}/afile.txt"),
    ),
    # storage
    Case("verify-manifest-wrong-shape", ("shards", "verify", f"{D}/bad-docs/v2"), "manifest"),
    Case("verify-manifest-not-json", ("shards", "verify", f"{D}/bad-docs/v3"), "manifest"),
    Case("verify-not-a-version", ("shards", "verify", f"{D}/bad-docs/nope"), "manifest"),
    Case("verify-one-part-path", ("shards", "verify", "justonepart")),
    Case("ls-one-bad-version", ("shards", "ls", D), "bad-docs"),
    # corpus steps
    Case("align-missing", ("align", "nosuch-wiki"), "nosuch-wiki"),
    Case("align-empty-wiki", ("align", "empty-wiki", "--out", "fromempty-align"), "empty-wiki"),
    Case("align-bad-out-name", ("align", "ok-wiki", "--out", "../escape"), "escape"),
    Case("align-bad-encoder", ("align", "ok-wiki", "--encoder", "bogus"), "bogus"),
    Case("codeswitch-missing", ("codeswitch", "nosuch-align"), "nosuch-align"),
    Case("codeswitch-bad-policy", ("codeswitch", "ok-wiki", "--policy", "bogus"), "bogus"),
    Case("codeswitch-bad-granularity", ("codeswitch", "ok-wiki", "--granularity", "phrase"), "phrase"),
    Case("significance-missing", ("significance", "--docs", "nosuch-docs"), "nosuch-docs"),
    Case(
        "significance-empty-docs", ("significance", "--docs", "empty-docs", "--ranker", "stat"), "empty-docs"
    ),
    Case("significance-bad-ranker", ("significance", "--docs", "tiny-docs", "--ranker", "bogus"), "bogus"),
    Case(
        "ingest-missing-dumps",
        ("ingest", "--dumps", "{world}/nodumps", "--concepts", str(SAMPLES / "concepts.tsv")),
    ),
    Case(
        "ingest-empty-dumps-dir",
        ("ingest", "--dumps", "{world}/dumps/empty", "--concepts", str(SAMPLES / "concepts.tsv")),
    ),
    Case(
        "ingest-bad-concepts", ("ingest", "--dumps", str(SAMPLES), "--concepts", "{world}/concepts-bad.tsv")
    ),
    Case(
        "ingest-no-page-kept",
        ("ingest", "--dumps", str(SAMPLES), "--concepts", "{world}/concepts-none.tsv", "--name", "none"),
    ),
    Case(
        "ingest-name-escapes",
        (
            "ingest",
            "--dumps",
            str(SAMPLES),
            "--concepts",
            str(SAMPLES / "concepts.tsv"),
            "--name",
            "../../evil",
        ),
    ),
    Case(
        "ingest-dotdot-lang",
        ("ingest", "--dumps", "{world}/dumps/dotdot", "--concepts", str(SAMPLES / "concepts.tsv")),
    ),
    Case(
        "wiki-up-dotdot-lang",
        (
            "wiki",
            "up",
            "--dumps",
            "{world}/dumps/dotdot",
            "--concepts",
            str(SAMPLES / "concepts.tsv"),
            "--dir",
            "{world}/family",
        ),
    ),
    Case(
        "wiki-up-slash-lang",
        (
            "wiki",
            "up",
            "--dumps",
            "{world}/dumps/slash",
            "--concepts",
            str(SAMPLES / "concepts.tsv"),
            "--dir",
            "{world}/family",
        ),
    ),
    Case(
        "wiki-up-bad-port",
        (
            "wiki",
            "up",
            "--dumps",
            str(SAMPLES),
            "--concepts",
            str(SAMPLES / "concepts.tsv"),
            "--port-base",
            "80",
        ),
        "port",
    ),
    Case("wiki-status-no-family", ("wiki", "status", "--dir", "{world}/nofamily")),
    Case("wiki-down-no-family", ("wiki", "down", "--dir", "{world}/nofamily")),
    Case("fetch-neither-source", ("fetch",), "--api"),
    Case(
        "fetch-bad-batch",
        ("fetch", "--api", "http://127.0.0.1:9/w/api.php", "--titles", "X", "--batch-size", "0"),
        "batch",
    ),
    Case(
        "fetch-every-wiki-down",
        ("fetch", "--api", "http://127.0.0.1:9/w/api.php", "--titles", "Danube", "--name", "down"),
        "cannot reach",
        may_write="data/down-wiki",
    ),
    Case("fetch-family-missing", ("fetch", "--family", "--family-dir", "{world}/nofamily")),
    Case(
        "experiment-missing-data", ("experiment", "--cs", "nosuch-docs", "--out", f"{R}/exp"), "nosuch-docs"
    ),
]


def _expand(arg: str, world: Path) -> str:
    return arg.format(world=world, runs=world / "runs", data=world / "data")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_error_line_exit_2_and_changes_nothing(case: Case, world: Path) -> None:
    before = _snapshot(world)
    proc = subprocess.run(
        [str(WIKIMIX), *(_expand(a, world) for a in case.args)],
        cwd=world,
        env={**os.environ, "WIKIMIX_DATA": str(world / "data"), "WIKIMIX_WIKI_DIR": str(world / "family")},
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    error_lines = [line for line in err_lines if line.startswith("error: ")]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert len(error_lines) == 1, proc.stderr
    assert err_lines[-1] == error_lines[0], f"the error line must close stderr: {proc.stderr}"
    assert case.says.lower() in error_lines[0].lower(), error_lines[0]
    if report := os.environ.get("WIKIMIX_BAD_INPUT_REPORT"):  # the table in an issue's closing note
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"case": case.id, "args": case.args, "error": error_lines[0]}) + "\n")
    after = _snapshot(world)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    allowed = [k for k in changed if case.may_write and k.startswith(case.may_write)]
    assert not [k for k in allowed if k.endswith("manifest.json")], f"a failed command committed: {allowed}"
    assert changed == allowed, f"files changed by a failed command: {sorted(set(changed) - set(allowed))}"


def test_ls_lists_the_good_versions_beside_a_bad_one(world: Path) -> None:
    proc = subprocess.run(
        [str(WIKIMIX), "shards", "ls", str(world / "data")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    listed = {tuple(line.split("\t")[:2]) for line in proc.stdout.splitlines()}
    assert ("bad-docs", "v1") in listed and ("tiny-docs", "v1") in listed and ("ok-wiki",) != ()
    assert "bad-docs@v2" in proc.stderr and "bad-docs@v3" in proc.stderr


def test_foreign_config_survives_train(world: Path) -> None:
    assert (world / "runs" / "foreign" / "config.json").read_text() == OWN_CONFIG
    assert json.loads((world / "runs" / "ar" / "config.json").read_text())["variant"] == "ar"


def test_help_and_a_bare_group_are_not_errors(world: Path) -> None:
    for args in ([], ["shards"], ["--help"], ["train", "--help"]):
        proc = subprocess.run([str(WIKIMIX), *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Usage" in proc.stdout and not proc.stderr.strip()
