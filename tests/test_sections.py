"""Wikitext -> sections rows: section tree, clean paragraphs, link/number/year anchors."""

from __future__ import annotations

import mwparserfromhell
import pytest
from mwparserfromhell.nodes import Heading

from pipeline.sections import link_target, numbers_in, prestrip, sections_from_page, years_in

ARTICLE = """{{Infobox country
| name = Kyiv {{lang|uk|Київ}}
| population = 2,952,301
}}
'''Kyiv''' ({{lang-uk|Київ}}) is the [[capital city|capital]] and most populous city of [[Ukraine]].<ref>{{cite web|url=http://x.org|title=Census 2001}}</ref> It has 2,952,301 inhabitants (2022).<ref name="a"/>

Kyiv was founded in the 5th&nbsp;century.<!-- disputed --> __NOTOC__

== History ==
[[File:Kyiv 1900.jpg|thumb|Kyiv in [[1900]]]]
The city was the capital of [[Kievan Rus']] from 882 to 1240.

=== Middle Ages ===
In 1240 the city was sacked by the [[Mongol Empire|Mongols]].

{| class="wikitable"
|-
| 1900 || 247,000
|}

=== Modern era ===
* [[1917]] — [[Ukrainian People's Republic]] proclaimed.
* 1991 — independence.

== Geography ==
The area is 839 km² at 179&nbsp;m; see [https://example.org the city site] and [[:Category:Kyiv|the category]].

== References ==
<references />

[[Category:Capitals in Europe]]
[[Kategorie:Hauptstadt]]
[[de:Kiew]]
"""


def _page(wikitext: str, **extra) -> dict:
    return {"wiki": "enwiki", "lang": "en", "page_id": 7, "rev_id": 70, "title": "Kyiv", "concept": "Kyiv",
            "wikitext": wikitext, **extra}  # fmt: skip


def test_section_tree_levels_parents_and_order():
    rows = sections_from_page(_page(ARTICLE))
    heads = {}
    for r in rows:
        heads.setdefault(r["section_idx"], (r["heading"], r["level"], r["parent"]))
    assert heads == {
        0: ("", 1, -1),
        1: ("History", 2, -1),
        2: ("Middle Ages", 3, 1),
        3: ("Modern era", 3, 1),
        4: ("Geography", 2, -1),
    }  # section 5 (References) has no text, so no rows
    lead = [r for r in rows if r["section_idx"] == 0]
    assert [r["paragraph_idx"] for r in lead] == [0, 1]
    for r in rows:
        assert (r["wiki"], r["page_id"], r["rev_id"], r["concept"], r["title"]) == (
            "enwiki",
            7,
            70,
            "Kyiv",
            "Kyiv",
        )


def test_text_keeps_prose_and_drops_templates_refs_tables_files_categories():
    rows = sections_from_page(_page(ARTICLE))
    text = "\n".join(r["text"] for r in rows)
    assert rows[0]["text"] == (
        "Kyiv is the capital and most populous city of Ukraine. It has 2,952,301 inhabitants (2022)."
    )
    assert rows[1]["text"] == "Kyiv was founded in the 5th century."  # no-break space -> space
    for junk in ("{{", "}}", "<ref", "cite web", "wikitable", "247,000", "thumb", "Kyiv 1900.jpg", "Capitals in",
                 "Hauptstadt", "Kiew", "disputed", "NOTOC", "[[", "]]", "https://"):  # fmt: skip
        assert junk not in text, junk
    modern = [r for r in rows if r["heading"] == "Modern era"]
    assert modern[0]["text"] == "1917 — Ukrainian People's Republic proclaimed.\n1991 — independence."
    geo = [r for r in rows if r["heading"] == "Geography"][0]
    assert "the city site" in geo["text"] and "the category" in geo["text"]


def test_anchors_links_numbers_and_years_per_paragraph():
    rows = sections_from_page(_page(ARTICLE))
    assert rows[0]["links"] == ["Capital city", "Ukraine"]
    assert rows[0]["numbers"] == ["2952301", "2022"] and rows[0]["years"] == [2022]
    history = [r for r in rows if r["heading"] == "History"][0]
    assert history["links"] == ["Kievan Rus'"]  # the file caption's [[1900]] went with the file
    assert history["years"] == [1240] and history["numbers"] == ["882", "1240"]
    middle = [r for r in rows if r["heading"] == "Middle Ages"][0]
    assert middle["links"] == ["Mongol Empire"]
    geo = [r for r in rows if r["heading"] == "Geography"][0]
    assert geo["links"] == ["Category:Kyiv"] and geo["numbers"] == ["839", "179"]


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("площею 17 098 246 км²", ["17098246"]),
        ("1,234,567 and 3,5 and 1.234,5", ["1234567", "3.5", "1234.5"]),
        ("इ.स. १९१९ मध्ये ४ लोक", ["1919", "4"]),
        ("１９４５年８月", ["1945", "8"]),
        ("17\u00a0098 people in 1919 123 rooms", ["17098", "1919", "123"]),
        ("2004–2005", ["2004", "2005"]),
    ],
)
def test_numbers_are_normalised_to_ascii(text, numbers):
    assert numbers_in(text) == numbers


def test_years_are_four_digit_numbers_in_range():
    assert years_in(["999", "1000", "2100", "2101", "1945", "19.45", "12345"]) == [1000, 2100, 1945]


def test_link_targets_are_normalised_titles():
    assert link_target("ukraine#History") == "Ukraine"
    assert link_target(":Category:Kyiv") == "Category:Kyiv"
    assert link_target("New_York  City") == "New York City"
    assert link_target("#Local section") == ""


def test_redirects_and_empty_pages_give_no_rows():
    assert sections_from_page(_page("#REDIRECT [[Kyiv]]")) == []
    assert sections_from_page(_page("#перенаправлення [[Київ]]")) == []
    assert sections_from_page(_page("")) == []
    assert sections_from_page(_page("{{Infobox only|x=1}}\n[[Category:X]]")) == []


def test_prestrip_leaves_unbalanced_braces_as_text():
    assert prestrip("a {{b {{c}} d}} e") == "a  e"
    assert prestrip("keep }} this {{ and this") == "keep }} this {{ and this"
    assert prestrip("x\n{|\n| 1\n{|\n| 2\n|}\n|}\ny") == "x\ny"
    assert prestrip('p<ref name="n">r {{c}}</ref>q<ref name="m" />s<!-- c -->t') == "pqst"


def test_real_articles_parse_into_clean_multi_section_rows(shared_dir):
    from pipeline.concepts import read_concepts
    from pipeline.dump import iter_dump

    wiki = shared_dir / "corpus" / "wikipedia"
    table = read_concepts(wiki / "concepts.tsv")
    pages = list(
        iter_dump(wiki / "ukwiki-20230501-truncated-100k.xml.xz", concepts=table, concepts_only=True)
    )
    assert len(pages) == len(table.titles("uk"))
    multi = nested = parents_without_text = 0
    for page in pages[:20]:
        rows = sections_from_page(page)
        assert rows, page["title"]
        # every section's level, the empty ones too: the lead, then each top-level heading the parser finds
        code = mwparserfromhell.parse(prestrip(page["wikitext"]))
        levels = [1] + [int(node.level) for node in code.nodes if isinstance(node, Heading)]
        multi += len({r["section_idx"] for r in rows}) >= 3
        for r in rows:
            assert "{{" not in r["text"] and "<ref" not in r["text"] and "[[" not in r["text"]
            assert r["text"].strip() == r["text"] and r["text"]
            idx = r["section_idx"]
            assert r["level"] == levels[idx], (page["title"], r["heading"])
            # the parent: the nearest earlier heading of a smaller level (-1 for the lead and top sections)
            smaller = [i for i in range(1, idx) if levels[i] < levels[idx]]
            assert r["parent"] == (smaller[-1] if idx and smaller else -1), (page["title"], r["heading"])
            nested += r["parent"] >= 0
            parents_without_text += r["parent"] >= 0 and r["parent"] not in {x["section_idx"] for x in rows}
        assert sum(len(r["links"]) for r in rows) > 0
    assert multi >= 15 and nested > 0 and parents_without_text > 0
