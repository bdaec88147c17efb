"""Dump source: plain/.xz/.bz2 export XML into pages rows, clean stop at truncation, concept langlinks,
the concept table reader, and `ingest_dumps` into a `<name>-wiki` dataset."""

from __future__ import annotations

import bz2
import lzma
import os
from pathlib import Path

import pytest

from pipeline.concepts import ConceptTableError, read_concepts
from pipeline.dump import DumpError, DumpReport, find_dumps, ingest_dumps, iter_dump, read_siteinfo

EXPORT_HEAD = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="de">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>dewiki</dbname>
    <base>https://de.wikipedia.org/wiki/Wikipedia:Hauptseite</base>
    <namespaces><namespace key="0" case="first-letter" /><namespace key="14" case="first-letter">Kategorie</namespace></namespaces>
  </siteinfo>
"""


def _page(page_id: int, title: str, text: str, ns: int = 0, redirect: str | None = None) -> str:
    red = f'<redirect title="{redirect}" />' if redirect else ""
    return (
        f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>{red}\n"
        f"    <revision><id>{page_id * 10}</id><timestamp>2023-05-01T12:00:00Z</timestamp>"
        f'<model>wikitext</model><format>text/x-wiki</format><text bytes="1" xml:space="preserve">{text}</text>'
        "</revision>\n  </page>\n"
    )


PAGES = [
    _page(1, "Kiew", "'''Kiew''' ist die Hauptstadt der [[Ukraine]].\n\n== Geschichte ==\nGegründet 482."),
    _page(2, "Kyjiw", "#WEITERLEITUNG [[Kiew]]", redirect="Kiew"),
    _page(3, "Kategorie:Ukraine", "Städte.", ns=14),
    _page(4, "Paris", "'''Paris''' ist die Hauptstadt Frankreichs.\n\n== Lage ==\nAn der Seine."),
]
CONCEPTS = (
    "concept\tqid\tlang\ttitle\tpage_id\trev_id\tchars\n"
    "Kyiv\tQ1899\tde\tKiew\t1\t10\t80\n"
    "Kyiv\tQ1899\tuk\tКиїв\t\t\t\n"
    "Paris\tQ90\tde\tParis\t4\t40\t70\n"
)


@pytest.fixture
def dump_dir(tmp_path: Path) -> Path:
    d = tmp_path / "dumps"
    d.mkdir()
    text = EXPORT_HEAD + "".join(PAGES) + "</mediawiki>\n"
    (d / "dewiki-sample.xml").write_text(text)
    (d / "concepts.tsv").write_text(CONCEPTS)
    (d / "README.md").write_text("not a dump")
    return d


def test_pages_rows_from_plain_xz_and_bz2_are_identical(dump_dir, tmp_path):
    text = (dump_dir / "dewiki-sample.xml").read_bytes()
    (tmp_path / "dewiki-x.xml.xz").write_bytes(lzma.compress(text))
    (tmp_path / "dewiki-x.xml.bz2").write_bytes(bz2.compress(text))
    table = read_concepts(dump_dir / "concepts.tsv")
    rows = {}
    for path in (dump_dir / "dewiki-sample.xml", tmp_path / "dewiki-x.xml.xz", tmp_path / "dewiki-x.xml.bz2"):
        report = DumpReport()
        rows[path.suffix] = list(iter_dump(path, concepts=table, report=report))
        assert (report.pages_read, report.pages_kept, report.truncated) == (4, 2, False)
        assert (report.wiki, report.lang) == ("dewiki", "de")
    strip = [[{k: v for k, v in r.items() if k != "fetched_at"} for r in rs] for rs in rows.values()]
    assert strip[0] == strip[1] == strip[2]
    kiew, paris = rows[".xml"]
    assert (kiew["wiki"], kiew["lang"], kiew["page_id"], kiew["rev_id"]) == ("dewiki", "de", 1, 10)
    assert kiew["concept"] == "Kyiv" and kiew["source"] == "dump"
    assert kiew["url"] == "https://de.wikipedia.org/wiki/Kiew"
    assert kiew["langlinks"] == [{"lang": "uk", "title": "Київ", "url": None}]
    assert kiew["timestamp"].isoformat() == "2023-05-01T12:00:00+00:00"
    assert paris["langlinks"] == [] and paris["concept"] == "Paris"


def test_redirects_other_namespaces_and_concepts_only_filters(dump_dir):
    path = dump_dir / "dewiki-sample.xml"
    titles = [p["title"] for p in iter_dump(path, namespaces=(0, 14), redirects=True)]
    assert titles == ["Kiew", "Kyjiw", "Kategorie:Ukraine", "Paris"]
    table = read_concepts(dump_dir / "concepts.tsv")
    only = [p["title"] for p in iter_dump(path, concepts=table.subset(["de", "uk"]), concepts_only=True)]
    assert only == ["Kiew", "Paris"]


def test_truncated_dump_stops_cleanly_and_reports_pages_read(dump_dir, tmp_path):
    text = EXPORT_HEAD + "".join(PAGES)
    cut = text[: text.index("Paris") + 20]  # mid-page, no closing tags
    (tmp_path / "dewiki-cut.xml").write_text(cut)
    report = DumpReport()
    rows = list(iter_dump(tmp_path / "dewiki-cut.xml", report=report))
    assert [r["title"] for r in rows] == ["Kiew"]
    assert report.truncated and report.pages_read == 3 and "line" in report.detail
    # a compressed stream cut short: the same clean stop
    many = [_page(i, f"Seite {i}", os.urandom(1500).hex()) for i in range(1, 151)]  # ~0.5 MB, incompressible
    data = lzma.compress((EXPORT_HEAD + "".join(many)).encode())
    (tmp_path / "dewiki-cut.xml.xz").write_bytes(data[: len(data) // 2])
    report = DumpReport()
    rows = list(iter_dump(tmp_path / "dewiki-cut.xml.xz", report=report))
    assert report.truncated and 0 < len(rows) == report.pages_read < 150
    assert "compressed stream ends early" in report.detail


def test_shared_truncated_dumps_read_to_the_cut(shared_dir):
    wiki = shared_dir / "corpus" / "wikipedia"
    dumps = find_dumps(wiki)
    assert set(dumps) == {"uk", "vi", "ja", "hy", "mr"}
    report = DumpReport()
    n = sum(1 for _ in iter_dump(dumps["mr"], report=report))
    assert report.truncated and report.pages_read > 1000 and n == report.pages_kept > 0
    assert "line 100001" in report.detail


def test_find_dumps_matches_lang_wiki_names_by_siteinfo_language(dump_dir, tmp_path):
    assert find_dumps(dump_dir) == {"de": dump_dir / "dewiki-sample.xml"}
    assert read_siteinfo(dump_dir / "dewiki-sample.xml").page_url("Rotes Rathaus") == (
        "https://de.wikipedia.org/wiki/Rotes_Rathaus"
    )
    with pytest.raises(DumpError, match="no dump for language"):
        find_dumps(dump_dir, ["de", "fr"])
    (dump_dir / "dewiki-other.xml").write_text((dump_dir / "dewiki-sample.xml").read_text())
    with pytest.raises(DumpError, match="two dumps for language 'de'"):
        find_dumps(dump_dir)
    with pytest.raises(DumpError, match="not found"):
        find_dumps(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DumpError, match="no <lang>wiki"):
        find_dumps(empty)


def test_not_an_export_is_a_one_line_error(tmp_path):
    (tmp_path / "xxwiki-bad.xml").write_text("<html><body>hi</body></html>")
    with pytest.raises(DumpError, match="not a MediaWiki export"):
        list(iter_dump(tmp_path / "xxwiki-bad.xml"))
    with pytest.raises(DumpError, match="cannot open dump"):
        list(iter_dump(tmp_path / "missing.xml"))


def test_ingest_dumps_writes_pages_sections_and_fetch_log(dump_dir, data_root):
    ref, reports = ingest_dumps(dump_dir, dump_dir / "concepts.tsv", root=str(data_root), name="d")
    assert str(ref).startswith("d-wiki@") and reports["de"].pages_kept == 2
    pages = ref.read("pages").to_pylist()
    assert [p["title"] for p in pages] == ["Kiew", "Paris"]
    assert pages[0]["langlinks"] == [{"lang": "uk", "title": "Київ", "url": None}]
    sections = ref.read("sections").to_pylist()
    assert {(s["title"], s["heading"]) for s in sections} == {
        ("Kiew", ""), ("Kiew", "Geschichte"), ("Paris", ""), ("Paris", "Lage"),
    }  # fmt: skip
    log = ref.read("fetch_log").to_pylist()
    assert {(r["requested_title"], r["status"]) for r in log} == {("Kiew", "ok"), ("Paris", "ok")}


def test_ingest_shared_dumps_finds_every_concept_page(shared_dir, data_root):
    wiki = shared_dir / "corpus" / "wikipedia"
    ref, reports = ingest_dumps(
        wiki, wiki / "concepts.tsv", root=str(data_root), name="s", langs=["mr", "ja"]
    )
    table = read_concepts(wiki / "concepts.tsv").subset(["mr", "ja"])
    assert ref.num_rows("pages") == len(table.rows)
    assert all(r.truncated for r in reports.values())
    log = ref.read("fetch_log").to_pylist()
    assert {r["status"] for r in log} == {"ok"} and len(log) == len(table.rows)
    page = ref.read("pages").to_pylist()[0]
    for ll in page["langlinks"]:  # URLs of the other dumps' wikis, from their siteinfo
        if ll["lang"] in ("mr", "ja"):
            assert ll["url"].startswith(f"https://{ll['lang']}.wikipedia.org/wiki/")


def test_concept_table_errors_are_one_line(tmp_path):
    bad = tmp_path / "c.tsv"
    with pytest.raises(ConceptTableError, match="not found"):
        read_concepts(bad)
    bad.write_text("concept\tlang\ttitle\n")
    with pytest.raises(ConceptTableError, match="header must be"):
        read_concepts(bad)
    bad.write_text(CONCEPTS.splitlines()[0] + "\nKyiv\t\tde\tKiew\tx\t\t\n")
    with pytest.raises(ConceptTableError, match=r"c.tsv:2: expected an integer"):
        read_concepts(bad)
    bad.write_text(CONCEPTS.splitlines()[0] + "\n")
    with pytest.raises(ConceptTableError, match="no concepts"):
        read_concepts(bad)
    bad.write_text(CONCEPTS + "Paris\t\tde\tkiew\t\t\t\n")
    with pytest.raises(ConceptTableError, match="belongs to two concepts"):
        read_concepts(bad)


def test_concept_table_lookups(dump_dir):
    table = read_concepts(dump_dir / "concepts.tsv")
    assert table.langs() == ["de", "uk"] and table.concepts() == ["Kyiv", "Paris"]
    assert table.concept_of("de", "kiew") == "Kyiv" and table.concept_of("de", "Berlin") is None
    assert table.langlinks("uk", "Київ") == [("de", "Kiew")]
    assert table.group("Kyiv")["uk"].title == "Київ" and table.row("de", "Paris").page_id == 4


def test_sample_corpus_ingests_every_concept_page_with_several_sections(data_root):
    from pipeline.sections import sections_from_page
    from tests.fixtures_wiki import SAMPLE_DIR

    if not (SAMPLE_DIR / "concepts.tsv").is_file():
        pytest.skip("samples/wiki not present")
    table = read_concepts(SAMPLE_DIR / "concepts.tsv")
    dumps = find_dumps(SAMPLE_DIR)
    assert set(dumps) == set(table.langs()) and len(dumps) >= 4
    for lang, path in dumps.items():
        report = DumpReport()
        pages = list(iter_dump(path, concepts=table, concepts_only=True, report=report))
        assert not report.truncated and len(pages) == len(table.titles(lang)) >= 8
        for page in pages:
            rows = sections_from_page(page)
            assert len({r["section_idx"] for r in rows}) >= 3, (lang, page["title"])
            assert len(page["langlinks"]) == len(table.group(page["concept"])) - 1
    ref, _ = ingest_dumps(SAMPLE_DIR, SAMPLE_DIR / "concepts.tsv", root=str(data_root), name="sample")
    assert ref.num_rows("pages") == len(table.rows)
