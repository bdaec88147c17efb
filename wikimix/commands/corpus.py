"""CLI verbs: align a wiki version across languages; build code-switched documents.

wikimix align demo-wiki                                  # -> demo-align@<version>
wikimix codeswitch demo-align --policy uniform --seed 0  # -> demo-docs@<version>
wikimix codeswitch demo-align --policy weighted --weights uk=2,vi=1 --granularity clause
wikimix codeswitch --sib200 ../shared/corpus/sib200 --sentences-per-doc 40
wikimix codeswitch --xquad ../shared/corpus/xquad          # xquad-docs: one code-switched document per article
A version is named `dataset` (latest) or `dataset@version`; --root defaults to $WIKIMIX_DATA or ./data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from wikimix.errors import ConfigError

RootOption = Annotated[str | None, typer.Option(help="data root (default $WIKIMIX_DATA or ./data)")]


def _open(root: str | None, spec: str):
    from storage.store import open_version

    dataset, _, version = spec.partition("@")
    return open_version(root, dataset, version or "latest")


def _weights(value: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        lang, sep, weight = item.partition("=")
        try:
            out[lang.strip()] = float(weight)
        except ValueError:
            raise ConfigError(f"--weights: expected lang=number, got {item!r}") from None
        if not sep or not lang.strip():
            raise ConfigError(f"--weights: expected lang=number, got {item!r}")
    return out


def _print_reports(ref, reports: list[dict]) -> None:
    for report in reports:
        typer.echo(json.dumps(report, ensure_ascii=False, sort_keys=True, default=str))
    typer.echo(str(ref))


def align(
    wiki: Annotated[str, typer.Argument(help="wiki version with sections: NAME-wiki[@version]")],
    root: RootOption = None,
    out: Annotated[str | None, typer.Option(help="output dataset (default NAME-align)")] = None,
    shards: Annotated[int, typer.Option(min=1, help="number of output shards (ranks)")] = 1,
    no_position: Annotated[bool, typer.Option(help="ignore unit order (shuffled inputs)")] = False,
    encoder: Annotated[
        str, typer.Option(help="embedding-margin evidence beside the anchors: none | e5 | minilm")
    ] = "none",
) -> None:
    """Align every concept's sections, paragraphs and sentences across languages."""
    from pipeline.align import AlignConfig, alignment_encoder, run_align

    cfg = AlignConfig(use_position=not no_position)
    ref, reports = run_align(_open(root, wiki), root, out, shards, cfg, alignment_encoder(encoder))
    _print_reports(ref, reports)


def codeswitch(
    alignments: Annotated[str | None, typer.Argument(help="alignment version: NAME-align[@version]")] = None,
    root: RootOption = None,
    out: Annotated[
        str | None, typer.Option(help="output dataset (default NAME-docs / sib200-docs / xquad-docs)")
    ] = None,
    policy: Annotated[str, typer.Option(help="uniform | weighted | curriculum")] = "uniform",
    granularity: Annotated[str, typer.Option(help="sentence | clause")] = "sentence",
    seed: Annotated[int, typer.Option(help="documents are deterministic per seed")] = 0,
    weights: Annotated[str | None, typer.Option(help="weighted policy: lang=weight,... (default 1)")] = None,
    max_chars: Annotated[int, typer.Option(min=1, help="a document closes at this length")] = 2000,
    no_lid: Annotated[bool, typer.Option(help="skip fastText language ID")] = False,
    no_lid_filter: Annotated[bool, typer.Option(help="keep sentences whose LID disagrees")] = False,
    shards: Annotated[int, typer.Option(min=1, help="number of output shards (ranks)")] = 1,
    sib200: Annotated[Path | None, typer.Option(help="build from a SIB-200 directory instead")] = None,
    xquad: Annotated[Path | None, typer.Option(help="build from an XQuAD directory instead")] = None,
    langs: Annotated[
        str | None,
        typer.Option(help="SIB-200 / XQuAD: comma-separated languages (lang_Script / xquad codes)"),
    ] = None,
    sentences_per_doc: Annotated[int, typer.Option(min=2, help="SIB-200: sentences per document")] = 24,
) -> None:
    """Build extreme code-switched documents (>= 3 languages, a switch at every segment)."""
    if xquad is not None:
        from pipeline.xquad import XquadConfig, build_xquad
        from storage.store import VersionWriter

        xcfg = XquadConfig(
            langs=[x.strip() for x in (langs or "").split(",") if x.strip()],
            policy=policy,
            weights=_weights(weights),
            seed=seed,
            lid=not no_lid,
        )
        writer = VersionWriter(root, out or "xquad-docs", params={"step": "xquad", **xcfg.__dict__})
        reports = [build_xquad(xquad, writer, xcfg, rank, shards) for rank in range(shards)]
        _print_reports(writer.commit(), reports)
        return
    if sib200 is not None:
        from pipeline.sib200 import Sib200Config, build_sib200
        from storage.store import VersionWriter
        from wikimix.guards import require_rows

        cfg = Sib200Config(
            langs=[x.strip() for x in (langs or "").split(",") if x.strip()],
            sentences_per_doc=sentences_per_doc,
            policy=policy,
            granularity=granularity,
            weights=_weights(weights),
            seed=seed,
            lid=not no_lid,
        )
        writer = VersionWriter(root, out or "sib200-docs", params={"step": "sib200", **cfg.__dict__})
        reports = [build_sib200(sib200, writer, cfg, rank, shards) for rank in range(shards)]
        why = f"no window of {sentences_per_doc} sentence(s) in {sib200} made a document of 3+ languages"
        require_rows(writer, "documents", "codeswitch --sib200", why)
        _print_reports(writer.commit(), reports)
        return
    if alignments is None:
        raise ConfigError("name an alignment version (NAME-align[@version]) or give --sib200 DIR")
    from pipeline.codeswitch import BuildConfig, run_codeswitch

    cfg = BuildConfig(
        policy=policy,
        granularity=granularity,
        seed=seed,
        weights=_weights(weights),
        max_chars=max_chars,
        lid=not no_lid,
        lid_filter=not no_lid_filter,
    )
    ref, reports = run_codeswitch(_open(root, alignments), root, out, shards, cfg)
    _print_reports(ref, reports)


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.command("align")(align)
    app.command("codeswitch")(codeswitch)
