"""Cross-language alignment: anchors, hand-written comparable articles, bad input, XQuAD, versions."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from bench.align import main as bench_main
from pipeline.align import (
    AlignConfig,
    LinkIndex,
    align_concept,
    align_version,
    dataset_name,
    run_align,
)
from pipeline.align_evidence import phonetic_key, text_anchors
from storage.store import VersionWriter, write_version
from wikimix.errors import WikimixError


def row(
    lang: str,
    section: int,
    paragraph: int,
    text: str,
    links=(),
    page_id: int = 1,
    concept: str = "Physics",
    heading: str = "",
) -> dict:
    return {
        "wiki": f"{lang}wiki",
        "lang": lang,
        "page_id": page_id,
        "rev_id": 10 + page_id,
        "concept": concept,
        "title": concept,
        "section_idx": section,
        "paragraph_idx": paragraph,
        "level": 1 if section == 0 else 2,
        "heading": heading,
        "parent": -1,
        "text": text,
        "links": list(links),
        "numbers": [],
        "years": [],
    }


# Three comparable articles: the lead and a history paragraph share anchors; each has one paragraph
# that nothing else talks about.
UK = [
    row("uk", 0, 0, "Фізика — наука про природу. Її основи заклав Ньютон (Newton) у 1687 році.", ["Ньютон"]),
    row(
        "uk",
        1,
        0,
        "У 1905 році Альберт Ейнштейн опублікував теорію відносності. Вона змінила фізику.",
        ["Альберт Ейнштейн"],
        heading="Історія",
    ),
    row("uk", 1, 1, "Фізика тісно пов'язана з математикою та хімією.", heading="Історія"),
]
VI = [
    row(
        "vi",
        0,
        0,
        "Vật lý học là khoa học tự nhiên. Newton đặt nền móng năm 1687.",
        ["Isaac Newton"],
        page_id=2,
    ),
    row(
        "vi",
        1,
        0,
        "Năm 1905, Albert Einstein công bố thuyết tương đối hẹp. Nó đã thay đổi vật lý.",
        ["Albert Einstein"],
        page_id=2,
        heading="Lịch sử",
    ),
    row("vi", 2, 0, "Trường đại học dạy vật lý ở nhiều cấp độ khác nhau.", page_id=2, heading="Giáo dục"),
]
JA = [
    row(
        "ja",
        0,
        0,
        "物理学は自然科学の一分野である。ニュートンは１６８７年に基礎を築いた。",
        ["アイザック・ニュートン"],
        page_id=3,
    ),
    row(
        "ja",
        1,
        0,
        "１９０５年、アインシュタインは特殊相対性理論を発表した。",
        ["アルベルト・アインシュタイン"],
        page_id=3,
        heading="歴史",
    ),
]
PAGES = [
    {
        "lang": "uk",
        "title": "Ньютон",
        "concept": "Isaac Newton",
        "langlinks": [
            {"lang": "vi", "title": "Isaac Newton", "url": None},
            {"lang": "ja", "title": "アイザック・ニュートン", "url": None},
        ],
    },
    {
        "lang": "uk",
        "title": "Альберт Ейнштейн",
        "concept": "Albert Einstein",
        "langlinks": [
            {"lang": "vi", "title": "Albert Einstein", "url": None},
            {"lang": "ja", "title": "アルベルト・アインシュタイン", "url": None},
        ],
    },
]


def test_anchors_are_language_independent() -> None:
    # Devanagari and full-width digits become ASCII numbers.
    assert "n:1919" in text_anchors("इ.स. १९१९ मध्ये")
    assert "n:1687" in text_anchors("ニュートンは１６８７年")
    # A Latin name inside Cyrillic text is an anchor; an ordinary sentence-initial Latin word is not.
    assert "w:newton" in text_anchors("Її заклав Ньютон (Newton).")
    latin = text_anchors("The theory was published by Einstein in Bern.")
    assert "w:einstein" in latin and "w:bern" in latin and "w:the" not in latin
    # Names meet across scripts through their consonant skeleton.
    assert phonetic_key("Warsaw") == phonetic_key("Варшава") == "vrsv"
    assert phonetic_key("Matlin") == phonetic_key("ماتلين")


def test_link_targets_map_to_concepts_through_langlinks() -> None:
    index = LinkIndex.from_pages(PAGES)
    assert index.anchor("uk", "Ньютон") == index.anchor("vi", "Isaac Newton") == "c:Isaac Newton"
    assert index.anchor("ja", "アルベルト・アインシュタイン") == "c:Albert Einstein"
    assert index.anchor("vi", "unknown page") == "t:unknown page"


def test_comparable_articles_align_and_keep_the_rest_marked() -> None:
    rows = align_concept(UK + VI + JA, LinkIndex.from_pages(PAGES))
    pairs = {(r["unit"], r["key_a"], r["key_b"]) for r in rows if r["key_b"]}
    # History paragraphs: years + Einstein's concept link, in all three pairs.
    assert ("paragraph", "ukwiki:1:11:1:0", "viwiki:2:12:1:0") in pairs
    assert ("paragraph", "jawiki:3:13:1:0", "ukwiki:1:11:1:0") in pairs
    assert ("paragraph", "jawiki:3:13:1:0", "viwiki:2:12:1:0") in pairs
    # Sentences: the 1905 sentences align, and carry their evidence.
    sent = [r for r in rows if r["unit"] == "sentence" and r["key_b"]]
    s1905 = [r for r in sent if {r["key_a"], r["key_b"]} == {"ukwiki:1:11:1:0:0", "viwiki:2:12:1:0:0"}]
    assert s1905 and "n:1905" in json.loads(s1905[0]["evidence"])["anchors"]
    # Paragraphs nothing else talks about are kept, marked, with score 0.
    unaligned = {r["key_a"]: r for r in rows if r["key_b"] is None}
    for key in ("ukwiki:1:11:1:1", "viwiki:2:12:2:0"):
        assert unaligned[key]["score"] == 0.0
        assert json.loads(unaligned[key]["evidence"])["reason"] == "no counterpart"
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert {r["concept"] for r in rows} == {"Physics"}


def test_one_language_and_empty_units_are_recorded_not_dropped() -> None:
    rows = align_concept(UK[:2] + [row("uk", 2, 0, "   ", heading="Порожньо")])
    reasons = {r["key_a"]: json.loads(r["evidence"])["reason"] for r in rows}
    assert reasons["ukwiki:1:11:0"] == "only one language"
    assert reasons["ukwiki:1:11:1"] == "only one language"
    assert reasons["ukwiki:1:11:2:0"] == "empty"
    assert all(r["key_b"] is None for r in rows)
    assert align_concept([]) == []


def test_aligner_reaches_target_on_shuffled_xquad(shared_dir: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--xquad", str(shared_dir / "corpus" / "xquad"), "--langs", "en,es,zh,ar", "--articles", "16"]
    f1 = bench_main([*args, "--encoder-backend", "none"])  # anchors alone (embeddings: the next test)
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"align_f1={f1:.4f}"
    assert "en-zh" in out and "zh-ar" in out
    assert f1 >= 0.9


def test_embedding_margin_joins_the_evidence_and_is_recorded(shared_dir: Path) -> None:
    import random

    from bench.align import load_xquad, section_rows
    from pipeline.encoder import Encoder, EncoderConfig

    xquad = shared_dir / "corpus" / "xquad"
    title, en = load_xquad(xquad, "en")[3]
    _, zh = load_xquad(xquad, "zh")[3]
    zh_order = list(enumerate(zh))
    random.Random(1).shuffle(zh_order)
    rows = section_rows("en", title, 1, list(enumerate(en))) + section_rows("zh", title, 2, zh_order[1:])
    truth = {f"xquad-zh:2:1:0:{k}": j for k, (j, _) in enumerate(zh_order[1:])}
    encoder = Encoder(EncoderConfig(threads=2))
    out = align_concept(rows, cfg=AlignConfig(use_position=False), encoder=encoder)
    pairs = [r for r in out if r["unit"] == "paragraph" and r["key_b"]]
    assert len(pairs) == len(zh) - 1  # the dropped paragraph's English side stays unaligned
    for r in pairs:
        evidence = json.loads(r["evidence"])
        en_idx = int(r["key_a"].rsplit(":", 1)[1])
        assert truth[r["key_b"]] == en_idx, r
        assert evidence["margin"] > 1.0 and -1.0 <= evidence["cos"] <= 1.0
    dropped = zh_order[0][0]
    assert any(r["key_a"].endswith(f":0:{dropped}") and r["key_b"] is None for r in out)


def test_bench_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(WikimixError, match="at least two"):
        bench_main(["--xquad", str(tmp_path), "--langs", "en"])
    with pytest.raises(WikimixError, match="cannot read XQuAD"):
        bench_main(["--xquad", str(tmp_path), "--langs", "en,de"])


def test_align_version_shards_by_concept_and_resumes(data_root: Path) -> None:
    other = [dict(r, concept="Other", page_id=r["page_id"] + 10) for r in UK + VI + JA]
    wiki = write_version(
        data_root,
        "t-wiki",
        {
            "sections": UK + VI + JA + other,
            "pages": [dict(p, wiki="ukwiki", page_id=i, rev_id=1, wikitext="x") for i, p in enumerate(PAGES)],
        },
    )
    whole, _ = run_align(wiki, cfg=AlignConfig())
    assert whole.dataset == dataset_name("t-wiki", "align") == "t-align"
    writer = VersionWriter(data_root, "t-align", "sharded", parents=[wiki])
    reports = [align_version(wiki, writer, rank, 2) for rank in range(2)]
    assert align_version(wiki, writer, 0, 2)["skipped"] is True  # the shard exists: resume skips it
    sharded = writer.commit()
    per_rank = [set(pl.read_parquet(p)["concept"].to_list()) for p in sharded.files("alignments")]
    assert per_rank[0].isdisjoint(per_rank[1]) and per_rank[0] | per_rank[1] == {"Physics", "Other"}
    assert sum(r["concepts"] for r in reports) == 2
    key = ["concept", "unit", "key_a", "key_b"]
    assert sorted(whole.scan("alignments").select(key).collect().rows(), key=str) == sorted(
        sharded.scan("alignments").select(key).collect().rows(), key=str
    )
    with pytest.raises(WikimixError, match="out of range"):
        align_version(wiki, writer, 3, 2)


def test_run_align_with_an_encoder_records_it(data_root: Path) -> None:
    from pipeline.encoder import Encoder, EncoderConfig

    wiki = write_version(data_root, "e-wiki", {"sections": UK + VI + JA})
    encoder = Encoder(EncoderConfig(threads=2))
    ref, _ = run_align(wiki, cfg=AlignConfig(), encoder=encoder)
    params = ref.manifest()["params"]
    assert params["encoder"] == encoder.name and params["encoder_hash"] == encoder.hash
    rows = ref.read("alignments").to_pylist()
    paragraphs = [json.loads(r["evidence"]) for r in rows if r["unit"] == "paragraph" and r["key_b"]]
    assert paragraphs and all("margin" in e and "cos" in e for e in paragraphs if e["method"] != "transitive")


def test_align_command_takes_the_multilingual_encoder(data_root: Path, capsys) -> None:
    from storage.store import open_version
    from wikimix.commands.corpus import align as align_command

    write_version(data_root, "c-wiki", {"sections": UK + VI + JA})
    align_command("c-wiki", root=str(data_root), encoder="e5")
    with_e5 = open_version(str(data_root), "c-align", "latest")
    assert with_e5.manifest()["params"]["encoder"].startswith("e5")
    rows = with_e5.read("alignments").to_pylist()
    assert any("margin" in json.loads(r["evidence"]) for r in rows if r["unit"] == "paragraph" and r["key_b"])
    align_command("c-wiki", root=str(data_root), out="anchors-align")  # the default: anchors only
    assert open_version(str(data_root), "anchors-align", "latest").manifest()["params"]["encoder"] == ""
    with pytest.raises(WikimixError, match="unknown alignment encoder"):
        align_command("c-wiki", root=str(data_root), out="x-align", encoder="labse")
