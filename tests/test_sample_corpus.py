"""The project's own sample corpus (samples/wiki/) is a well-formed MediaWiki export with a matching
concepts table, so `make demo` and tests can rely on it.

    .venv/bin/pytest tests/test_sample_corpus.py
"""

from __future__ import annotations

import csv
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "wiki"
LANGS = ["en", "de", "es", "ru", "ja"]
NS = "{http://www.mediawiki.org/xml/export-0.10/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
HEADER = ["concept", "qid", "lang", "title", "page_id", "rev_id", "chars"]
REFERENCE_HEADINGS = {"References", "Einzelnachweise", "Referencias", "Примечания", "脚注"}
LEVEL2_HEADING = re.compile(r"^==([^=].*?)==\s*$", re.M)


@dataclass(frozen=True)
class Page:
    title: str
    ns: str
    page_id: int
    rev_id: int
    redirect: str | None
    text: str
    text_bytes: int
    sha1: str


def sha1_base36(text: str) -> str:
    """MediaWiki's <sha1>: the SHA-1 of the UTF-8 text in base 36, zero-padded to 31 digits."""
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def load_pages(lang: str) -> tuple[ET.Element, list[Page]]:
    root = ET.parse(SAMPLE / f"{lang}wiki-sample.xml").getroot()
    pages = []
    for el in root.iter(f"{NS}page"):
        rev = el.find(f"{NS}revision")
        text_el = rev.find(f"{NS}text")
        redirect = el.find(f"{NS}redirect")
        pages.append(
            Page(
                title=el.findtext(f"{NS}title"),
                ns=el.findtext(f"{NS}ns"),
                page_id=int(el.findtext(f"{NS}id")),
                rev_id=int(rev.findtext(f"{NS}id")),
                redirect=None if redirect is None else redirect.get("title"),
                text=text_el.text or "",
                text_bytes=int(text_el.get("bytes")),
                sha1=rev.findtext(f"{NS}sha1"),
            )
        )
    return root, pages


@pytest.fixture(scope="module")
def wikis() -> dict[str, list[Page]]:
    return {lang: load_pages(lang)[1] for lang in LANGS}


@pytest.fixture(scope="module")
def concepts() -> list[dict[str, str]]:
    with open(SAMPLE / "concepts.tsv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        assert reader.fieldnames == HEADER
        return list(reader)


@pytest.mark.parametrize("lang", LANGS)
def test_export_header_and_pages_are_well_formed(lang: str) -> None:
    root, pages = load_pages(lang)
    assert root.tag == f"{NS}mediawiki" and root.get(XML_LANG) == lang
    siteinfo = root.find(f"{NS}siteinfo")
    assert siteinfo.findtext(f"{NS}dbname") == f"{lang}wiki"
    assert siteinfo.findtext(f"{NS}base") == siteinfo.findtext(f"{NS}base").strip()
    assert siteinfo.findtext(f"{NS}base").startswith(f"http://{lang}.wikimix.invalid/wiki/")
    keys = {ns.get("key") for ns in siteinfo.find(f"{NS}namespaces")}
    assert {"0", "6", "10", "14"} <= keys
    assert len({p.page_id for p in pages}) == len(pages)
    for page in pages:
        assert page.ns == "0"
        assert page.text_bytes == len(page.text.encode("utf-8")), page.title
        assert page.sha1 == sha1_base36(page.text), page.title


def test_revision_ids_are_unique_across_wikis(wikis: dict[str, list[Page]]) -> None:
    rev_ids = [p.rev_id for pages in wikis.values() for p in pages]
    assert len(set(rev_ids)) == len(rev_ids)


def test_concepts_table_matches_the_exports(
    wikis: dict[str, list[Page]], concepts: list[dict[str, str]]
) -> None:
    by_title = {(lang, p.title): p for lang, pages in wikis.items() for p in pages}
    for row in concepts:
        page = by_title[(row["lang"], row["title"])]
        assert int(row["page_id"]) == page.page_id and int(row["rev_id"]) == page.rev_id
        assert int(row["chars"]) == len(page.text)
        assert page.redirect is None
        assert row["qid"] == "" or re.fullmatch(r"Q\d+", row["qid"])
    grid = {(row["concept"], row["lang"]) for row in concepts}
    names = {row["concept"] for row in concepts}
    assert len(names) == 8 and len(grid) == len(concepts) == 8 * len(LANGS)
    assert grid == {(c, lang) for c in names for lang in LANGS}


def test_articles_have_sections_and_the_noise_the_cleaner_must_remove(
    wikis: dict[str, list[Page]], concepts: list[dict[str, str]]
) -> None:
    by_title = {(lang, p.title): p for lang, pages in wikis.items() for p in pages}
    interlanguage = re.compile(r"\[\[(?:" + "|".join(LANGS) + r"):")
    for row in concepts:
        text = by_title[(row["lang"], row["title"])].text
        headings = [h.strip() for h in LEVEL2_HEADING.findall(text)]
        content = [h for h in headings if h not in REFERENCE_HEADINGS]
        assert len(content) >= 3, (row["lang"], row["title"], headings)
        assert text.startswith("{{"), row["title"]  # infobox first
        assert "<ref" in text and "'''" in text, row["title"]
        assert re.search(r"\[\[(Category|Kategorie|Categoría|Категория):", text), row["title"]
        assert not interlanguage.search(text), row["title"]


def test_japanese_is_not_latin_script_and_russian_is_cyrillic(
    wikis: dict[str, list[Page]], concepts: list[dict[str, str]]
) -> None:
    kana_or_kanji = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    for page in wikis["ja"]:
        prose = re.sub(r"\{\{.*?\}\}|\[\[[^\]|]*\||<[^>]+>|[\x00-\x7f]", "", page.text, flags=re.S)
        assert kana_or_kanji.search(page.title), page.title
        assert len(kana_or_kanji.findall(prose)) > 0.8 * len(prose), page.title
    cyrillic_titles = [r["title"] for r in concepts if r["lang"] == "ru"]
    assert all(re.search(r"[\u0400-\u04ff]", t) for t in cyrillic_titles)


def test_edge_case_pages_for_the_fetcher(
    wikis: dict[str, list[Page]], concepts: list[dict[str, str]]
) -> None:
    in_concepts = {(r["lang"], r["title"]) for r in concepts}
    redirects = [p for p in wikis["en"] if p.redirect is not None]
    assert [(p.title, p.redirect) for p in redirects] == [("Earth's Moon", "Moon")]
    assert redirects[0].text.startswith("#REDIRECT [[Moon]]")
    disambiguation = [p for p in wikis["en"] if "{{disambiguation}}" in p.text]
    assert [p.title for p in disambiguation] == ["Curie (disambiguation)"]
    for lang, pages in wikis.items():
        singles = [p for p in pages if (lang, p.title) not in in_concepts and p.redirect is None]
        assert len(singles) >= 2, lang
