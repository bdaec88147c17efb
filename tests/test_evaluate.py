"""The evaluator end to end on `smoke` checkpoints trained here (seconds), plus hand-computed cases for
what it adds on top of training/metrics.py."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from storage.store import write_version
from tests.fixtures_training import xquad_rows
from training import evaluate as ev
from training.config import make_config
from training.data import DataOptions, ShardData, parse_data_spec
from training.tokenizers import ByteTokenizer, load_tokenizer
from training.trainer import train
from wikimix.errors import ConfigError

SMALL = dict(
    prompt_min=8, prompt_max=16, cont_len=8, max_examples=8, n_generate=3, steps=(2, 4), batch_size=4
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_dir: Path):
    """`smoke` ar and mdlm checkpoints on XQuAD documents (en, de, ru), trained once for this module."""
    torch.set_num_threads(1)  # tiny models: a second thread only adds sync cost on a busy CPU
    base = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WIKIMIX_DATA", str(base / "data"))
        ref = write_version(base / "data", "xq-docs", {"documents": xquad_rows(shared_dir)}, num_shards=2)
        spec = str(ref)
        dirs = {}
        for variant in ("ar", "mdlm"):
            cfg = make_config(
                variant, budget="smoke", data=spec, out=str(base / variant), progress=False, max_steps=12
            )
            train(cfg)
            dirs[variant] = base / variant
        yield {"spec": spec, "dirs": dirs, "base": base}


def fasttext_lid(texts: list[str]) -> list[str]:
    from pipeline.lid import default_identifier

    return [label for label, _ in default_identifier().predict(texts)]


def test_evaluates_smoke_checkpoints_end_to_end(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "report"
    paths = ev.evaluate(
        [runs["dirs"]["ar"], runs["dirs"]["mdlm"]],
        runs["spec"],
        out,
        ev.EvalConfig(**SMALL),
        lid=fasttext_lid,
    )
    for name in ("comparison_md", "comparison_parquet", "frontier_parquet", "loss_curves", "frontier_png"):
        assert Path(paths[name]).stat().st_size > 0, name
    assert Path(paths["loss_curves"]).read_bytes()[:4] == b"\x89PNG"

    table = pq.read_table(paths["comparison_parquet"]).to_pylist()
    by = {r["model"]: r for r in table}
    assert set(by) == {"ar", "mdlm", "reference"}
    assert by["ar"]["likelihood"] == "exact" and by["mdlm"]["likelihood"] == "bound"
    assert by["ar"]["judge"] == "ar"  # the only ar checkpoint judges everyone
    for name in ("ar", "mdlm"):
        row = by[name]
        assert math.isclose(row["perplexity"], math.exp(row["nll"]), rel_tol=1e-9)
        # byte tokens: bits per byte is nats per token / ln 2
        assert math.isclose(row["bits_per_byte"], row["nll"] / math.log(2), rel_tol=1e-6)
        assert 0 <= row["accuracy"] <= 1 and row["gen_ppl"] > 1 and row["gen_seconds"] > 0
        assert 0 <= row["lang_mix"] <= 1 and row["test_pairs"] == 8
    assert by["mdlm"]["steps"] == 64  # the variant's own default step count is the table's point
    frontier = pq.read_table(paths["frontier_parquet"]).to_pylist()
    assert sorted(p["steps"] for p in frontier if p["model"] == "mdlm") == [2, 4, 64]
    assert [p["steps"] for p in frontier if p["model"] == "ar"] == [8]
    md = Path(paths["comparison_md"]).read_text()
    assert "| Model |" in md and "<= " in md and "Gen time (s)" in md
    completions = [json.loads(line) for line in Path(paths["completions"]).read_text().split("\n") if line]
    assert len(completions) == 3 * (1 + 3)  # 3 prompts: ar at one point, mdlm at three


def test_test_split_is_disjoint_from_training_documents(runs, monkeypatch):
    """Every document the evaluator scores is absent from every window the trainer can draw."""
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "report-disjoint"
    cfg = ev.EvalConfig(**{**SMALL, "max_examples": 64, "n_generate": 1, "steps": (1,)})
    paths = ev.evaluate([runs["dirs"]["ar"]], runs["spec"], out, cfg)
    tested = set(json.loads(Path(paths["summary"]).read_text())["test_doc_ids"]["ar"])
    assert len(tested) >= 10
    data = ShardData(parse_data_spec(runs["spec"]), ByteTokenizer(), DataOptions(seq_len=32, batch_size=64))
    trained: set[str] = set()
    batches = data.train_batches()
    all_train_docs = {d for d, _ in data.documents("train")}
    while trained != all_train_docs:  # one full epoch of windows
        for joined in next(batches).doc_ids:
            trained.update(joined.split("+"))
    assert tested and not tested & trained


def test_refuses_a_checkpoint_with_a_smaller_test_split(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    with pytest.raises(ConfigError, match="test_frac"):
        ev.evaluate(
            [runs["dirs"]["ar"]], runs["spec"], tmp_path, ev.EvalConfig(**{**SMALL, "test_frac": 0.2})
        )


def test_language_mix_on_a_hand_computed_case():
    """Prompt pieces en, en, de; completion pieces de, de -> TV distance |2/3-0| / 2 + |1/3-1| / 2 = 2/3."""
    script = {"Hello there.": "en", "Good day.": "en", "Guten Tag.": "de", "Wie geht's?": "de", "Ja.": "de"}
    lid = lambda texts: [script[t] for t in texts]  # noqa: E731 (a lookup table as the identifier)
    mix = ev.language_mix(lid, ["Hello there. Good day. Guten Tag."], ["Wie geht's? Ja."])
    assert math.isclose(mix, 2 / 3)
    assert ev.language_mix(lid, ["Hello there."], ["Good day."]) == 0.0
    assert ev.sentence_pieces("Один. 二つ。 12 34\nतीन।") == ["Один.", "二つ。", "तीन।"]


def test_bytes_likelihood_kind_and_table_formatting(tmp_path):
    bpe_like = ByteTokenizer()
    assert ev.num_bytes(bpe_like, list("é".encode()) + [bpe_like.special.eos_id]) == 2

    class Ar(torch.nn.Module):
        name, nll_is_bound = "ar", False

    class Diffusion(torch.nn.Module):
        name, nll_is_bound = "mdlm", True

    class Proxy(torch.nn.Module):
        name, nll_is_bound = "sdd", False

    assert [ev.likelihood_kind(m()) for m in (Ar, Diffusion, Proxy)] == ["exact", "bound", "proxy"]
    md = ev.markdown_table(
        [
            {"model": "a", "likelihood": "bound", "perplexity": 571.26, "accuracy": None},
            {"model": "b", "likelihood": "exact", "perplexity": 195.6, "accuracy": 0.25},
            {"model": "c", "likelihood": "bound", "perplexity": 5.18e21, "accuracy": 0.0},
        ]
    )
    assert md.splitlines()[2] == "| a | bound | <= 571.26 | - |"
    assert md.splitlines()[3] == "| b | exact | 195.60 | 0.250 |"
    assert md.splitlines()[4] == "| c | bound | <= 5.18e+21 | 0.000 |"
    # wall time from cumulative throughput: 2000 tokens at 100 tok/s
    assert (
        ev.train_seconds([{"tokens": 1000, "tok_per_s": 50.0}, {"tokens": 2000, "tok_per_s": 100.0}]) == 20.0
    )
    assert ev.train_seconds([]) is None
    assert load_tokenizer("byte").vocab_size == 260
    assert Counter(ev.EvalConfig(steps=(8, 4, 8)).steps) == Counter((4, 8))


def test_cli_evaluate_writes_the_table(runs, monkeypatch):
    from typer.testing import CliRunner

    from wikimix.cli import app
    from wikimix.commands.evaluate import _int_list

    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "report-cli"
    args = ["evaluate", "--ckpt", str(runs["dirs"]["mdlm"]), "--data", runs["spec"], "--out", str(out)]
    args += ["--prompt-min", "8", "--prompt-max", "16", "--cont-len", "8", "--max-examples", "4"]
    args += ["--n-generate", "1", "--steps", "2", "--no-lid"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| mdlm | mdlm |" in result.output and (out / "comparison.parquet").exists()
    # no ar checkpoint: no judge, and the frontier plots token accuracy
    assert pq.read_table(out / "comparison.parquet").column("gen_ppl").to_pylist() == [None, None]
    # an ar run outside the table may judge
    result = CliRunner().invoke(app, args + ["--judge", str(runs["dirs"]["ar"])])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "comparison.parquet").to_pylist()
    assert [r["model"] for r in table] == ["mdlm", "reference"] and table[0]["judge"] == "ar"
    assert table[1]["gen_ppl"] > 1  # the true continuation, judged
    with pytest.raises(ConfigError, match="not an exact-likelihood"):
        ev.evaluate(
            [runs["dirs"]["ar"]], runs["spec"], out, ev.EvalConfig(**SMALL), judge=runs["dirs"]["mdlm"]
        )
    with pytest.raises(ConfigError, match="--steps"):
        _int_list("8,x", "--steps")


def test_sample_latency_bench_prints_its_headline_last(runs, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sample_latency", ev.__file__.replace("training/evaluate.py", "bench/sample_latency.py")
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--ckpt", str(runs["dirs"]["ar"]), "--ckpt", str(runs["dirs"]["mdlm"]), "--steps", "2"]
    ratio = bench.main(
        args
        + [
            "--headline-steps",
            "4",
            "--prompt-len",
            "8",
            "--new-tokens",
            "4",
            "--repeats",
            "1",
            "--threads",
            "1",
        ]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"mdlm_vs_ar_latency={ratio:.3f}" and ratio > 0


def test_checkpoint_spec_parses_sampler_options():
    path, options = ev.parse_spec("runs/sdd::sampler=original,steps=[16,64],temperature=0.5")
    assert path == Path("runs/sdd") and options == {
        "sampler": "original",
        "steps": [16, 64],
        "temperature": 0.5,
    }
    assert ev.parse_spec("runs/ar") == (Path("runs/ar"), {})
    with pytest.raises(ConfigError, match="expected key=value"):
        ev.parse_spec("runs/sdd::original")


def test_one_checkpoint_under_two_sampler_options_gives_two_rows(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    mdlm = runs["dirs"]["mdlm"]
    paths = ev.evaluate(
        [runs["dirs"]["ar"], mdlm, f"{mdlm}::method=low_confidence,steps=2"],
        runs["spec"],
        runs["base"] / "report-options",
        ev.EvalConfig(**SMALL),
    )
    by = {r["model"]: r for r in pq.read_table(paths["comparison_parquet"]).to_pylist()}
    assert set(by) == {"ar", "mdlm", "mdlm[method=low_confidence]", "reference"}
    twin = by["mdlm[method=low_confidence]"]
    assert twin["nll"] == by["mdlm"]["nll"] and twin["test_pairs"] == by["mdlm"]["test_pairs"]  # scored once
    assert twin["steps"] == 2 and by["mdlm"]["steps"] == 64
    frontier = pq.read_table(paths["frontier_parquet"]).to_pylist()
    assert [p["steps"] for p in frontier if p["model"] == "mdlm[method=low_confidence]"] == [2]


@pytest.mark.prefect
def test_compare_trains_entries_in_parallel_and_publishes_one_table(
    runs, monkeypatch, prefect_client, capsys
):
    import importlib.util

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    spec = importlib.util.spec_from_file_location(
        "compare", ev.__file__.replace("training/evaluate.py", "bench/compare.py")
    )
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "compare"
    args = ["--data", runs["spec"], "--budget", "smoke", "--out", str(out), "--entries", "ar,sdd,embed-hyper"]
    args += ["--jobs", "2", "--threads", "2", "--n-generate", "2", "--max-examples", "4", "--steps", "2"]
    args += ["--sdd-options", "steps=[2],max_examples=2", "--no-lid", "--set", "max_steps=6"]
    args += ["--publish", "cmp-test"]
    compare.main(args)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "mdlm_vs_ar_ppl=nan"  # no mdlm entry in this comparison
    table = pq.read_table(out / "report" / "comparison.parquet").to_pylist()
    assert [r["model"] for r in table] == ["ar", "sdd", "sdd[sampler=original]", "embed-hyper", "reference"]
    assert all(r["tokens_seen"] == 6 * 4 * 32 for r in table[:-1])  # --set reached every entry
    assert [r["test_pairs"] for r in table[:-1]] == [4, 2, 2, 4]  # SDD's rows on fewer pairs, scored once
    assert table[1]["steps"] == table[2]["steps"] == 2
    hyper = json.loads((out / "embed-hyper" / "config.json").read_text())
    assert hyper["model"]["head"] == "hyper"
    found = prefect_client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cmp-test-evaluation"]))
    )
    assert found, "no comparison artifact"
    rows = json.loads(found[0].data) if isinstance(found[0].data, str) else found[0].data
    assert [r["model"] for r in rows] == [r["model"] for r in table]
    with pytest.raises(ConfigError, match="unknown entry 'gpt'"):
        compare.main(["--data", runs["spec"], "--out", str(out), "--entries", "ar,gpt"])
