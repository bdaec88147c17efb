"""The evaluator end to end on `smoke` checkpoints trained here (seconds), and its parts on hand-checkable cases:
the same scored bytes in every row, intervals, equal training tokens, a judge that is not a row, the concept
split, and the baselines' arithmetic."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from storage.store import write_version
from tests.fixtures_training import xquad_rows
from training import evaluate as ev
from training.baselines import KneserNeyBytes, UnigramBytes
from training.config import make_config
from training.data import DataOptions, ShardData, parse_data_spec
from training.eval_task import (
    Pair,
    TaskConfig,
    build_pairs,
    cut_to_bytes,
    encode_pair,
    invalid_bytes,
    text_stats,
    token_bytes,
)
from training.intervals import cluster_bootstrap, mean_and_standard_error, ratio_interval
from training.judge import judge_run
from training.tokenizers import BPETokenizer, ByteTokenizer
from training.trainer import train
from wikimix.errors import ConfigError

SMALL = dict(
    prompt_min=8, prompt_max=16, cont_len=8, max_examples=12, n_generate=4, t_samples=4, t_chunk=2,
    n_boot=50, reference_vocab=400, temperatures=(1.0,), ngram_order=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_dir: Path):
    """`smoke` ar and mdlm checkpoints on XQuAD documents (en, de, ru), and the cached judge, trained once."""
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
        rows_cfg = make_config(
            "ar", budget="smoke", data=spec, out=str(base / "ar"), progress=False, max_steps=12
        )
        judge = judge_run(ref, rows_cfg)
        yield {"spec": spec, "ref": ref, "dirs": dirs, "base": base, "judge": judge, "rows_cfg": rows_cfg}


def test_every_row_scores_the_same_bytes_with_intervals_and_an_outside_judge(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    paths = ev.evaluate(
        [runs["dirs"]["ar"], runs["dirs"]["mdlm"]], runs["spec"], runs["base"] / "report", ev.EvalConfig(**SMALL),
        judge=runs["judge"],
    )  # fmt: skip
    rows = json.loads(Path(paths["comparison_json"]).read_text())
    by = {(r["model"], r["decoding"]): r for r in rows}
    assert {r["model"] for r in rows} == {"ar", "mdlm", "unigram", "kneser-ney", "reference", "prompt-copy"}
    # the judge is never a row, yet judges every row
    assert not any(r["model"].startswith("ar-") for r in rows)
    assert all(r["judge"] == Path(runs["judge"]).name and r["gen_ppl"] > 1 for r in rows)
    # the same continuation bytes everywhere, and every completion cut to them
    assert len({r["scored_bytes"] for r in rows}) == 1 and len({r["test_pairs"] for r in rows}) == 1
    assert rows[0]["test_pairs"] == 12 and rows[0]["clusters"] >= 2
    for line in Path(paths["completions"]).read_text().splitlines():
        assert json.loads(line)["completion"] is not None
    # intervals on every scored column, around the point estimate
    for r in rows:
        for key in (
            ("accuracy", "entropy", "gen_ppl")
            + (("ngram_judge_bpb",) if r["model"] != "kneser-ney" else ())
            + (("bits_per_byte",) if r.get("bits_per_byte") is not None else ())
        ):
            low, high = r[f"{key}_ci95"]
            assert low <= r[key] + 1e-9 and r[key] <= high + 1e-9, (r["model"], key)
    # equal training tokens across model rows; the reference continuation is copied byte for byte
    models = [r for r in rows if r["kind"] == "model"]
    assert len({r["tokens_seen"] for r in models}) == 1 and models[0]["tokens_seen"] == 12 * 4 * 32
    assert by[("reference", "-")]["accuracy"] == 1.0
    assert all(r["short_completions"] == 0 for r in rows if r["model"] != "prompt-copy")
    # byte tokens are not what is scored: bits per byte comes from the continuation's bytes
    mdlm = next(r for r in models if r["model"] == "mdlm")
    assert mdlm["likelihood"] == "bound" and mdlm["t_samples"] == 4 and mdlm["bound_se"] > 0
    assert Path(paths["loss_curves"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads(Path(paths["frontier_json"]).read_text())[0]["model"] == "mdlm"
    n, m = ev.rows_beating_unigram(rows)
    assert m == 3 and 0 <= n <= m  # ar, mdlm and the n-gram have likelihoods; the unigram is the bar


def test_judge_is_cached_by_data_tokenizer_and_config(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    state = json.loads((Path(runs["judge"]) / "state.json").read_text())
    assert state["step"] == 4 * 12  # a larger budget than any row
    mtime = (Path(runs["judge"]) / "state.json").stat().st_mtime
    assert judge_run(runs["ref"], runs["rows_cfg"]) == runs["judge"]  # reused, not retrained
    assert (Path(runs["judge"]) / "state.json").stat().st_mtime == mtime
    other = make_config("ar", budget="smoke", data=runs["spec"], out="x", progress=False, max_steps=13)
    from training.judge import judge_config, judge_key

    assert judge_key(runs["ref"], judge_config(other)) != Path(runs["judge"]).name.removeprefix("ar-")
    # how a run goes (compile, threads, TF32) is not what it trains: the same judge
    faster = replace(runs["rows_cfg"], compile="on", threads=7, tf32=False)
    assert judge_key(runs["ref"], judge_config(faster)) == judge_key(
        runs["ref"], judge_config(runs["rows_cfg"])
    )


def test_test_pairs_come_from_concepts_never_trained_on(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    data = ShardData(parse_data_spec(runs["spec"]), ByteTokenizer(), DataOptions(seq_len=32, batch_size=64))
    tok = BPETokenizer.train(data.texts("train"), 400)
    pairs = build_pairs(data, tok, TaskConfig(prompt_min=8, prompt_max=16, cont_len=8, max_pairs=10_000))
    trained_units = set()
    batches = data.train_batches()
    all_train = {d for d, _ in data.documents("train")}
    seen: set[str] = set()
    while seen != all_train:  # one full epoch of windows
        for joined in next(batches).doc_ids:
            seen.update(joined.split("+"))
    trained_units = {data.units[d] for d in seen}
    assert len(pairs) >= 20 and not {p.unit for p in pairs} & trained_units
    text = {r["doc_id"]: r["text"] for r in runs["ref"].read("documents").to_pylist()}
    for p in pairs:  # prompt and continuation are consecutive text of their document
        assert (
            text[p.doc_id][p.offset : p.offset + len(p.prompt + p.continuation)] == p.prompt + p.continuation
        )


def test_refuses_a_checkpoint_with_a_smaller_test_split(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    with pytest.raises(ConfigError, match="test_frac"):
        ev.evaluate(
            [runs["dirs"]["ar"]], runs["spec"], tmp_path, ev.EvalConfig(**{**SMALL, "test_frac": 0.2})
        )
    with pytest.raises(ConfigError, match="not an exact-likelihood"):
        ev.evaluate(
            [runs["dirs"]["ar"]], runs["spec"], tmp_path, ev.EvalConfig(**SMALL), judge=runs["dirs"]["mdlm"]
        )


def test_unigram_bits_on_a_known_distribution():
    lm = UnigramBytes.fit(["aab"])  # add-one over 256 bytes: p(a) = 3/259, p(b) = 2/259
    assert math.isclose(lm.nll_bits(b"zzz", b"ab"), -math.log2(3 / 259) - math.log2(2 / 259))
    assert math.isclose(lm.probs.sum(), 1.0)
    assert len(lm.sample(b"", 50, np.random.default_rng(0))) == 50


def test_kneser_ney_by_hand_and_normalised():
    # order 1: D = n1 / (n1 + 2 n2) = 1/3 (b seen once, a twice); p(w) = max(c - D, 0) / 3 + D * 2 / 3 / 256
    lm = KneserNeyBytes.fit(["aab"], order=1)
    d = 1 / 3
    assert math.isclose(lm.dist(b"")[ord("a")], (2 - d) / 3 + d * 2 / 3 / 256)
    assert math.isclose(lm.dist(b"")[ord("z")], d * 2 / 3 / 256)
    text = "the cat sat on the mat; the dog sat on the log. Мама мыла раму. " * 3
    lm = KneserNeyBytes.fit([text], order=4)
    for context in (b"", b"t", b"th", b"the", b"xyz", "Ма".encode()):
        assert math.isclose(lm.dist(context).sum(), 1.0)
    assert lm.dist(b"the")[ord(" ")] > 0.9  # 'the' is always followed by a space
    bits = lm.nll_bits(b"the c", b"at")
    assert math.isclose(bits, -math.log2(lm.dist(b"e c")[ord("a")]) - math.log2(lm.dist(b" ca")[ord("t")]))
    assert bits < UnigramBytes.fit([text]).nll_bits(b"the c", b"at")


def test_pairs_encode_to_exactly_their_bytes_and_completions_cut_on_characters():
    pair = Pair("Moon", "d1", "Луна — спутник ", "Земли. 月は地球の衛星", offset=0)
    bpe = BPETokenizer.train([pair.prompt + pair.continuation] * 20, 300)
    for tok in (ByteTokenizer(), bpe):
        ids, plen, ranks = encode_pair(tok, pair, max_len=None)
        assert token_bytes(tok, ids[plen:]) == pair.continuation.encode("utf-8") and ranks is None
        ids, plen, _ = encode_pair(tok, pair, max_len=len(tok.encode(pair.continuation)) + 3)
        assert plen == 3 and token_bytes(tok, ids[plen:]) == pair.continuation.encode("utf-8")
    data = "aé月".encode()  # 1 + 2 + 3 bytes
    assert (
        cut_to_bytes(data, 2) == "aé".encode()
        and cut_to_bytes(data, 4) == data
        and cut_to_bytes(data, 1) == b"a"
    )
    broken = b"ab\xff\xfecd"
    assert invalid_bytes(broken) == 2
    stats = text_stats([broken, b"abab"], distinct_n=2, rep_n=2)
    assert stats["invalid_utf8"] == 2 / 10 and math.isclose(
        stats["entropy"], 1.5
    )  # abcd: 2 bits, abab: 1 bit


def test_cluster_bootstrap_intervals():
    assert ratio_interval([1.0, 2.0], [1.0, 1.0], ["a", "a"]) is None  # one cluster: nothing to resample
    rng = np.random.default_rng(1)
    clusters = [f"c{i // 4}" for i in range(400)]
    values = [rng.normal(3.0, 1.0) + (int(c[1:]) % 2) for c in clusters]
    low, high = ratio_interval(values, [1.0] * 400, clusters)
    assert low < np.mean(values) < high and high - low < 0.5
    narrow = ratio_interval(values[:40], [1.0] * 40, clusters[:40])
    assert narrow[1] - narrow[0] > high - low  # fewer clusters, wider interval
    assert mean_and_standard_error([1.0, 3.0]) == (2.0, 1.0)
    # any statistic: the mean through the generic bootstrap draws the same clusters as the ratio of sums
    x = np.asarray(values)
    generic = cluster_bootstrap(lambda idx: float(x[idx].mean()), clusters, n_boot=200, seed=3)
    assert np.allclose(generic, ratio_interval(values, [1.0] * 400, clusters, n_boot=200, seed=3))
    assert cluster_bootstrap(lambda idx: 0.0, ["a", "a"]) is None


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


def test_language_mix_on_a_hand_computed_case():
    """Prompt pieces en, en, de; completion pieces de, de -> TV distance |2/3-0| / 2 + |1/3-1| / 2 = 2/3."""
    script = {"Hello there.": "en", "Good day.": "en", "Guten Tag.": "de", "Wie geht's?": "de", "Ja.": "de"}
    lid = lambda texts: [script[t] for t in texts]  # noqa: E731 (a lookup table as the identifier)
    mix = ev.language_mix(lid, ["Hello there. Good day. Guten Tag."], ["Wie geht's? Ja."])
    assert math.isclose(mix, 2 / 3)
    assert ev.sentence_pieces("Один. 二つ。 12 34\nतीन।") == ["Один.", "二つ。", "तीन।"]


@pytest.mark.prefect
def test_compare_writes_the_comparison_and_the_split(runs, monkeypatch, prefect_client, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "compare", ev.__file__.replace("training/evaluate.py", "bench/compare.py")
    )
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "compare"
    args = ["--data", runs["spec"], "--budget", "smoke", "--out", str(out), "--entries", "ar,llada-byte"]
    args += ["--jobs", "2", "--threads", "2", "--n-generate", "2", "--max-examples", "6", "--no-lid"]
    args += [
        "--set",
        "max_steps=6",
        "--set",
        "val_frac=0.05",
        "--set",
        "test_frac=0.05",
        "--publish",
        "cmp-test",
        "--seeds",
        "0,1",
    ]
    n, m = compare.main(args)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"rows_beating_unigram={n}/{m}"
    rows = json.loads((out / "comparison.json").read_text())
    for key in ("model", "variant", "tokens_seen", "scored_bytes", "bits_per_byte", "bits_per_byte_ci95",
                "gen_ppl", "judge", "entropy"):  # fmt: skip
        assert all(key in r for r in rows), key
    models = [r for r in rows if r["kind"] == "model"]
    assert [r["model"] for r in models] == ["ar", "llada-byte", "ar-seed1"]
    seeds = json.loads((out / "seeds.json").read_text())["ar"]
    assert seeds["n"] == 2 and seeds["low"] < seeds["mean"] < seeds["high"]
    assert seeds["bits_per_byte"][0] != seeds["bits_per_byte"][1]  # another seed, another model
    assert {r["tokens_seen"] for r in models} == {6 * 4 * 32} and len({r["scored_bytes"] for r in rows}) == 1
    split = json.loads((out / "split.json").read_text())
    assert set(split) == {"train", "val", "test"} and split["test"]
    assert not set(split["test"]) & set(split["train"]) and not set(split["val"]) & set(split["train"])
    bpe = json.loads((out / "ar" / "config.json").read_text())
    assert bpe["train"]["tokenizer"] == "bpe"  # the smoke comparison has BPE rows beside the byte row
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = prefect_client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cmp-test-evaluation"]))
    )
    assert found, "no comparison artifact"
    with pytest.raises(ConfigError, match="unknown entry 'gpt'"):
        compare.main(["--data", runs["spec"], "--out", str(out), "--entries", "ar,gpt"])


def test_cli_evaluate_writes_the_table(runs, monkeypatch):
    from typer.testing import CliRunner

    from wikimix.cli import app

    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    out = runs["base"] / "report-cli"
    args = ["evaluate", "--ckpt", str(runs["dirs"]["mdlm"]), "--data", runs["spec"], "--out", str(out)]
    args += ["--prompt-min", "8", "--prompt-max", "16", "--cont-len", "8", "--max-examples", "4"]
    args += ["--n-generate", "2", "--t-samples", "2", "--temperatures", "1", "--no-lid"]
    result = CliRunner().invoke(app, args + ["--judge", str(runs["judge"])])
    assert result.exit_code == 0, result.output
    assert "| mdlm | model |" in result.output and "| unigram | baseline |" in result.output
    rows = json.loads((out / "comparison.json").read_text())
    assert rows[0]["judge"] == Path(runs["judge"]).name and rows[0]["t_samples"] == 2
    result = CliRunner().invoke(app, args + ["--temperatures", "1,x"])
    assert isinstance(result.exception, ConfigError) and "--temperatures" in str(result.exception)


def test_a_greedy_default_gets_a_matched_temperature_row_too(runs):
    from training.scoring import Model

    ar = ev.load_model(runs["dirs"]["ar"], "cpu", set())
    assert [label for label, _ in ev.decodings(ar, ev.EvalConfig())] == ["default (T=1)"]
    greedy = Model(**{**vars(ar), "options": {"temperature": 0.0}})
    assert ev.decodings(greedy, ev.EvalConfig()) == [
        ("default (T=0)", {}),
        ("T=1", {"temperature": 1.0, "top_p": 1.0}),
    ]


def test_mauve_tells_one_distribution_from_noise_in_any_language():
    import itertools
    import random

    from training.judge import MauveJudge

    subjects = ["Der Mond", "The river", "Пчела", "La imprenta", "Marie Curie", "Ein Vulkan"]
    predicates = [
        "ist alt.",
        "flows to the sea.",
        "собирает нектар.",
        "cambió Europa.",
        "won two prizes.",
        "bricht aus.",
    ]
    pool = [f"{s} {p}" for s, p in itertools.product(subjects, predicates)]
    random.Random(0).shuffle(pool)
    refs, same = pool[:18], pool[18:]  # two samples of one distribution
    noise = [f"zzq {i} xx" for i in range(18)]
    judge = MauveJudge(seed=0)
    assert judge.score(same, refs) > 0.5 > judge.score(noise, refs)
    assert judge.score(same[:5], refs[:5]) is None  # too few texts to quantise
    clusters = [f"c{i % 6}" for i in range(18)]
    same_point, same_ci = judge.score_with_interval(same, refs, clusters, n_boot=20)
    noise_point, noise_ci = judge.score_with_interval(noise, refs, clusters, n_boot=20)
    assert same_point == judge.score(same, refs) and noise_ci[1] < same_ci[0]
    assert judge.score_with_interval(same, refs, ["one"] * 18, n_boot=20)[1] is None  # one cluster


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


def test_one_checkpoint_under_two_sampler_options_is_scored_once(runs, monkeypatch):
    monkeypatch.setenv("WIKIMIX_DATA", str(runs["base"] / "data"))
    mdlm = runs["dirs"]["mdlm"]
    paths = ev.evaluate(
        [mdlm, f"{mdlm}::method=low_confidence,steps=2"],
        runs["spec"],
        runs["base"] / "report-options",
        ev.EvalConfig(**{**SMALL, "max_examples": 4, "n_generate": 2}),
    )
    by = {r["model"]: r for r in json.loads(Path(paths["comparison_json"]).read_text())}
    twin = by["mdlm[method=low_confidence]"]
    assert (
        twin["bits_per_byte"] == by["mdlm"]["bits_per_byte"]
        and twin["steps"] == 2
        and by["mdlm"]["steps"] == 64
    )
