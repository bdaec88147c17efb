"""How the corpus build's cost grows with pages and with languages per concept (issue 21).

    .venv/bin/python bench/scale.py                                 # pages 1,2,4,8x; 8..189 languages
    .venv/bin/python bench/scale.py --sizes 1,2 --langs-sizes 8,189 --json runs/scale.json
    .venv/bin/python bench/scale.py --quick                         # the sample wiki, seconds (tests)

Pages: the shared dumps and their concept table replicated k times, written as plain XML under --work:
copy j > 0 of every page gets the title "<title> (copy j)" and new page and revision ids, and its concept
"<concept> #j", so a k-times corpus has k times the pages, concepts and text in the same languages.
Languages: one SIB-200 group of --sentences consecutive sentences as one concept in the first L varieties
(pipeline.sib200.write_sib200_wiki), L from 8 to every variety (189).

Every stage (ingest, align, codeswitch, lid, sig_stat = significance with the stat ranker, sig_encoder =
leave-one-out significance with the e5 encoder on a FIXED sample of --encoder-docs documents cut to
--encoder-chars characters) runs in a fresh process (this script with --child). The child times the
stage's work by CPU and wall seconds (imports and model loads excluded: they do not grow with the input)
and the parent reads the child's peak resident memory from os.wait4's rusage (ru_maxrss). The exponent
of a stage is the least-squares slope of log CPU seconds against log size. Printed: one line per stage
and size, one per stage with its exponents and memory, per-unit costs, and last
`corpus_cost_exponent=` (the largest exponent in pages over the stages whose input grows: every stage
but sig_encoder), `lang_cost_exponent=` (align's exponent in languages per concept) and
`peak_rss_growth=` (the largest over those stages of a stage's peak RSS at the largest size / at the
smallest: per stage, so the LID models' ~0.8 GB in codeswitch and lid cannot hide another stage's growth).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wikimix.errors import ConfigError, WikimixError, run_or_exit  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("WIKIMIX_SHARED", REPO.parent / "shared"))
STAGES = ("ingest", "align", "codeswitch", "lid", "sig_stat", "sig_encoder")
NEEDS = {"align": "ingest", "codeswitch": "align", "lid": "codeswitch", "sig_stat": "codeswitch"}
NEEDS["sig_encoder"] = "codeswitch"
FIXED_INPUT = {"sig_encoder"}  # its sample does not grow with the corpus: not in the exponent or memory
ID_OFFSET = 1_000_000_000  # copy j of a page: page and revision ids + j * ID_OFFSET
PAGE_RE = re.compile(r"<page>.*?</page>\n?", re.S)
ID_RE = re.compile(r"<id>(\d+)</id>")
RESULT = "RESULT "


# ------------------------------------------------------------------------------------------ inputs


def _dump_text(path: Path) -> str:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rb") as fh:
        return fh.read().decode("utf-8")


def replicate_dumps(dumps: Path, concepts: Path, copies: int, out: Path) -> tuple[Path, Path]:
    """`copies` times every complete page of every dump (a truncated dump loses its cut page) and the
    concept table, under new titles, ids and concept names; (dump dir, concept table). Reused if there."""
    from pipeline.dump import find_dumps

    table_out = out / "concepts.tsv"
    if table_out.is_file():
        return out, table_out
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out.parent))
    for path in find_dumps(dumps).values():
        text = _dump_text(path)
        pages = PAGE_RE.findall(text)
        if not pages:
            raise WikimixError(f"{path}: no complete <page> to replicate")
        name = re.sub(r"\.xml(\.xz|\.bz2)?$", "", path.name)
        with open(tmp / f"{name}-x{copies}.xml", "w", encoding="utf-8") as fh:
            fh.write(text[: text.index(pages[0])])
            for j in range(copies):
                for page in pages:
                    fh.write(page if j == 0 else _page_copy(page, j))
            fh.write("</mediawiki>\n")
        del text, pages
    lines = concepts.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
    with open(tmp / "concepts.tsv", "w", encoding="utf-8") as fh:
        fh.write(header + "\n")
        for j in range(copies):
            for concept, qid, lang, title, *rest in rows:
                if j:
                    concept, qid, title, rest = f"{concept} #{j}", "", f"{title} (copy {j})", []
                fh.write("\t".join([concept, qid, lang, title, *rest]) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out, table_out


def _page_copy(page: str, j: int) -> str:
    page = re.sub(r"<title>(.*?)</title>", lambda m: f"<title>{m.group(1)} (copy {j})</title>", page, count=1)
    # the first two ids are the page's and its revision's
    return ID_RE.sub(lambda m: f"<id>{int(m.group(1)) + j * ID_OFFSET}</id>", page, count=2)


# ------------------------------------------------------------------------------- one stage, in a child


def _warm_up(stage: str) -> None:
    """Load what a stage loads lazily on its first call (modules, LID models), before the clock starts."""
    import anyascii  # noqa: F401
    import polars  # noqa: F401
    import scipy.optimize  # noqa: F401

    from pipeline.sentences import split_sentences

    split_sentences("Warm. Up.", "en")
    if stage in ("codeswitch", "lid"):
        from pipeline.lid import default_identifier, identify

        default_identifier().predict(["warm up"])
        identify(["warm up"])


def run_stage(stage: str, root: str, name: str, source: dict, inputs: dict, opts: dict) -> str:
    """The stage's work on its inputs (version paths); returns the path of the version it wrote."""
    from storage.store import VersionWriter, ref_from_path

    shards = opts["shards"]
    if stage == "ingest":
        if source["kind"] == "pages":
            from pipeline.dump import ingest_dumps

            ref, _ = ingest_dumps(source["dumps"], source["concepts"], root=root, name=name)
        else:
            from pipeline.sib200 import language_dirs, write_sib200_wiki

            langs = language_dirs(source["sib200"])[: source["langs"]]
            ref = write_sib200_wiki(source["sib200"], root, name, langs, sentences=source["sentences"])
        return ref.path
    if stage == "align":
        from pipeline.align import run_align

        ref, _ = run_align(ref_from_path(inputs["ingest"]), root, num_shards=shards)
        return ref.path
    if stage == "codeswitch":
        from pipeline.codeswitch import run_codeswitch

        ref, _ = run_codeswitch(ref_from_path(inputs["align"]), root, num_shards=shards)
        return ref.path
    docs = ref_from_path(inputs["codeswitch"])
    if stage == "lid":
        from pipeline.lid import identify_version

        writer = VersionWriter(root, f"{name}-lid", parents=[docs])
        identify_version(docs, writer)
        return writer.commit().path
    if stage == "sig_stat":
        from pipeline.significance import StatRanker, rank_version

        writer = VersionWriter(root, f"{name}-sig", params={"rankers": ["stat"]}, parents=[docs])
        rank_version(docs, writer, [StatRanker.fit_version(docs)], progress=False)
        return writer.commit().path
    raise ConfigError(f"unknown stage {stage!r}")


def describe(path: str) -> dict:
    """Rows of each table of a version (the units costs are counted in), and the tokens a significance
    table ranked, counted from list lengths by polars (after the clock has stopped)."""
    import polars as pl

    from storage.store import ref_from_path

    ref = ref_from_path(path)
    info = {table: ref.num_rows(table) for table in ref.tables() if table != "fetch_log"}
    if "significance" in info:
        spans = ref.scan("significance").select(pl.col("spans").list.len().sum()).collect()
        info["tokens"] = int(spans.item() or 0)
    return info


def _encoder_stage(inputs: dict, opts: dict) -> tuple[dict, float, float]:
    """Leave-one-out significance of a fixed sample; (info, cpu s, wall s) without the model load."""
    from pipeline.encoder import Encoder, EncoderConfig
    from pipeline.significance import LooRanker, significance_rows
    from storage.store import ref_from_path

    docs = ref_from_path(inputs["codeswitch"])
    batch = next(docs.iter_batches("documents", batch_size=opts["encoder_docs"], columns=["doc_id", "text"]))
    ids, texts = (
        batch.column("doc_id").to_pylist(),
        [t[: opts["encoder_chars"]] for t in batch[1].to_pylist()],
    )
    ranker = LooRanker(Encoder(EncoderConfig(threads=opts["threads"])))
    ranker.rank(["warm up"])
    cpu, wall = time.process_time(), time.perf_counter()
    rows = significance_rows([ranker], ids, texts)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"documents": len(rows), "tokens": sum(len(r["spans"]) for r in rows)}, cpu, wall


def child(spec: dict) -> None:
    stage = spec["stage"]
    if stage == "sig_encoder":
        info, cpu, wall = _encoder_stage(spec["inputs"], spec["opts"])
    else:
        _warm_up(stage)
        cpu, wall = time.process_time(), time.perf_counter()
        path = run_stage(stage, spec["root"], spec["name"], spec["source"], spec["inputs"], spec["opts"])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        info = {"path": path, **describe(path)}
    print(RESULT + json.dumps({"cpu_s": cpu, "wall_s": wall, **info}), flush=True)


def spawn(spec: dict, threads: int) -> dict:
    """Run one stage in a fresh process; its result with `rss_mb`, the child's peak resident memory."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["RAYON_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            stdout=out,
            stderr=err,
            env=env,
            text=True,
        )
        # wait4, not Popen.wait: it returns the rusage of this child alone (ru_maxrss: its peak, in KiB)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        last = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise WikimixError(f"stage {spec['stage']} of {spec['name']} failed (exit {proc.returncode}): {last}")
    result = next(json.loads(line[len(RESULT) :]) for line in stdout.splitlines() if line.startswith(RESULT))
    return {**result, "rss_mb": usage.ru_maxrss / 1024}


# ------------------------------------------------------------------------------------- the two series


def run_series(kind: str, sizes: list[int], stages: list[str], args, work: Path, root: Path) -> dict:
    """{size: {stage: result}} for pages (kind 'pages', size = copies) or languages (size = varieties)."""
    child_opts = {
        "shards": args.shards,
        "threads": args.threads,
        "encoder_docs": args.encoder_docs,
        "encoder_chars": args.encoder_chars,
    }
    results: dict[int, dict] = {}
    for size in sizes:
        if kind == "pages":
            copy_dir = work / f"dumps-x{size}"
            dumps, concepts = replicate_dumps(args.dumps, args.concepts, size, copy_dir)
            source = {"kind": "pages", "dumps": str(dumps), "concepts": str(concepts)}
        else:
            source = {"kind": "langs", "sib200": str(args.sib200), "langs": size, "sentences": args.sentences}
        name, inputs, results[size] = f"{kind}-{size}", {}, {}
        for stage in stages:
            spec = {"stage": stage, "root": str(root), "name": name, "source": source, "inputs": dict(inputs)}
            result = spawn({**spec, "opts": child_opts}, args.threads)
            results[size][stage] = result
            if "path" in result:
                inputs[stage] = result.pop("path")
            counts = " ".join(f"{k}={v}" for k, v in result.items() if k not in ("cpu_s", "wall_s", "rss_mb"))
            print(
                f"{kind}={size} stage={stage} cpu_s={result['cpu_s']:.2f} wall_s={result['wall_s']:.2f} "
                f"peak_rss_mb={result['rss_mb']:.0f} {counts}",
                flush=True,
            )
        if kind == "pages" and not args.keep:
            shutil.rmtree(work / f"dumps-x{size}", ignore_errors=True)
    return results


def exponent(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log value against log size (nan with fewer than two sizes)."""
    import numpy as np

    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(values, 1e-6)), 1)[0])


UNIT_OF = {
    "ingest": "pages",
    "align": "pages",
    "codeswitch": "pages",
    "lid": "documents",
    "sig_stat": "documents",
    "sig_encoder": "tokens",
}


def summarize_series(kind: str, results: dict, stages: list[str]) -> dict:
    """Per stage: exponent of CPU seconds in size, peak RSS at the smallest and largest size, and the
    CPU seconds per unit at the largest size."""
    sizes = sorted(results)
    first, last = sizes[0], sizes[-1]
    out = {}
    for stage in stages:
        cpu = [results[s][stage]["cpu_s"] for s in sizes]
        unit = UNIT_OF[stage] if kind == "pages" else "languages"
        source = {"pages": "ingest", "documents": "codeswitch", "tokens": stage}.get(unit)
        units = results[last][source][unit] if source else last
        out[stage] = {
            "exponent": exponent(sizes, cpu),
            "rss_first_mb": results[first][stage]["rss_mb"],
            "rss_last_mb": results[last][stage]["rss_mb"],
            "cpu_s_last": cpu[-1],
            "unit": unit,
            "cpu_s_per_unit": cpu[-1] / max(units, 1),
        }
        print(
            f"{kind} stage={stage} exponent={out[stage]['exponent']:.3f} "
            f"peak_rss_mb={out[stage]['rss_first_mb']:.0f}@{first}->{out[stage]['rss_last_mb']:.0f}@{last} "
            f"cpu_s_per_{unit[:-1] if unit.endswith('s') else unit}={out[stage]['cpu_s_per_unit']:.5f}"
            + (" (fixed sample: not in the figures)" if stage in FIXED_INPUT else ""),
            flush=True,
        )
    return out


def _ints(value: str, what: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in value.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"{what}: expected comma-separated integers, got {value!r}") from None
    if not sizes or sizes[0] < 1:
        raise ConfigError(f"{what}: expected positive integers, got {value!r}")
    return sizes


DEFAULTS = {
    "sizes": "1,2,4,8",
    "langs_sizes": "8,16,32,64,128,189",
    "dumps": SHARED / "corpus" / "wikipedia",
    "sentences": 16,
    "encoder_docs": 2,
    "encoder_chars": 400,
}
QUICK = {
    "sizes": "1,2",
    "langs_sizes": "4,8",
    "dumps": REPO / "samples" / "wiki",
    "sentences": 4,
    "encoder_docs": 1,
    "encoder_chars": 60,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", help="page scale factors, copies of the dumps (default 1,2,4,8)")
    ap.add_argument("--langs-sizes", help="languages per concept, SIB-200 (default 8,16,32,64,128,189)")
    ap.add_argument("--dumps", type=Path, help="pages-articles dumps (default the shared ones)")
    ap.add_argument("--concepts", type=Path, help="concept table (default DUMPS/concepts.tsv)")
    ap.add_argument("--sib200", type=Path, default=SHARED / "corpus" / "sib200")
    ap.add_argument("--sentences", type=int, help="sentences of the SIB-200 group, one concept (default 16)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    ap.add_argument("--shards", type=int, default=1, help="output shards of align and codeswitch")
    ap.add_argument("--threads", type=int, default=1, help="threads per stage process")
    ap.add_argument("--encoder-docs", type=int, help="sig_encoder's fixed sample: documents (default 2)")
    ap.add_argument("--encoder-chars", type=int, help="... each cut to this many characters (default 400)")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new temp directory)")
    ap.add_argument("--keep", action="store_true", help="keep the replicated dumps and the data")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    ap.add_argument("--quick", action="store_true", help="the repo's sample wiki, 1-2x, 4-8 languages")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    # --quick changes the defaults; what is given explicitly stays
    defaults = QUICK if args.quick else DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    sizes, langs_sizes = _ints(args.sizes, "--sizes"), _ints(args.langs_sizes, "--langs-sizes")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        raise ConfigError(
            f"--stages: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(STAGES)}"
        )
    stages = [s for s in STAGES if s in stages]
    missing = sorted({NEEDS[s] for s in stages if s in NEEDS} - set(stages))
    if missing:
        raise ConfigError(f"--stages: the chosen stages need {', '.join(missing)} too")
    if min(args.sentences, args.shards, args.threads, args.encoder_docs, args.encoder_chars) < 1:
        raise ConfigError("--sentences, --shards, --threads, --encoder-docs and --encoder-chars must be >= 1")
    args.concepts = args.concepts or args.dumps / "concepts.tsv"
    if not args.concepts.is_file():
        raise WikimixError(f"concept table not found: {args.concepts}")
    from pipeline.sib200 import language_dirs

    available = len(language_dirs(args.sib200))
    langs_sizes = sorted({min(n, available) for n in langs_sizes})
    if langs_sizes[0] < 3:
        raise ConfigError("--langs-sizes: a code-switched document needs at least 3 languages")
    lang_stages = [s for s in stages if s != "sig_encoder"]

    work = args.work or Path(tempfile.mkdtemp(prefix="wikimix-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    started = time.perf_counter()
    try:
        pages = run_series("pages", sizes, stages, args, work, root)
        langs = run_series("langs", langs_sizes, lang_stages, args, work, root)
        page_fit = summarize_series("pages", pages, stages)
        lang_fit = summarize_series("langs", langs, lang_stages)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    growing = [s for s in stages if s not in FIXED_INPUT]
    corpus_exponent = max(page_fit[s]["exponent"] for s in growing)
    lang_exponent = lang_fit["align"]["exponent"] if "align" in lang_fit else float("nan")
    rss_growth = max(page_fit[s]["rss_last_mb"] / page_fit[s]["rss_first_mb"] for s in growing)
    print(
        f"sizes={sizes} langs_sizes={langs_sizes} stages={stages} total_wall_s={time.perf_counter() - started:.0f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"pages": pages, "langs": langs, "pages_fit": page_fit, "langs_fit": lang_fit}
        args.json.write_text(json.dumps(record, indent=1, default=str))
    print(f"corpus_cost_exponent={corpus_exponent:.3f}")
    print(f"lang_cost_exponent={lang_exponent:.3f}")
    print(f"peak_rss_growth={rss_growth:.3f}")


if __name__ == "__main__":
    run_or_exit(main)
