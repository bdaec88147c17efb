"""The crawler against a real local MediaWiki family (tests/fixtures_wiki.py): langlinks across wikis,
batching, revision pinning, error records. Fault tests live in test_fetch_faults.py."""

from __future__ import annotations

import pytest

from pipeline.concepts import normalize_title
from pipeline.fetch import crawl, fetch_concepts
from pipeline.mwapi import FetchConfig, FetchError
from tests.fixtures_wiki import DISAMBIGUATION_TITLE, REDIRECT_TITLE

pytestmark = pytest.mark.mediawiki


def _pages(ref) -> list[dict]:
    return ref.read("pages").to_pylist()


@pytest.fixture(scope="module")
def full_crawl(wiki_family, tmp_path_factory):
    """One crawl of the whole concept table from the home wiki (the others come from its interwikimap)."""
    root = tmp_path_factory.mktemp("full") / "data"
    home_url = wiki_family.wikis[wiki_family.home].api_url
    ref, summary = crawl(home_url, concepts=wiki_family.table, root=str(root), name="t")
    return root, ref, summary


def test_concept_table_crawl_stores_every_page_language_in_few_requests(wiki_source, wiki_family, full_crawl):
    table = wiki_family.table
    _, ref, summary = full_crawl

    pages = _pages(ref)
    stored = {(p["lang"], normalize_title(p["title"])) for p in pages}
    wanted = {(r.lang, normalize_title(r.title)) for r in table.rows}
    assert wanted <= stored, f"missing: {sorted(wanted - stored)[:5]}"
    assert len(pages) == len({(p["wiki"], p["page_id"]) for p in pages})  # each page once
    assert summary["pages"] == len(pages) and summary["errors"] == 0
    # per wiki: one siteinfo, then per 50 titles one info+langlinks and one content request
    per_wiki = {lang: len(table.titles(lang)) for lang in table.langs()}
    assert summary["requests"] == sum(1 + 2 * -(-n // 50) for n in per_wiki.values()), summary
    if wiki_source.name == "shared":  # the target, on the family built from the shared dumps
        assert summary["requests_per_page"] <= 0.1, summary
    assert len({p["wiki"] for p in pages}) >= 4

    # langlinks stored with each page name the same concept's titles, with URLs on the sibling wikis
    by_key = {(p["lang"], normalize_title(p["title"])): p for p in pages}
    for row in table.rows:
        page = by_key[(row.lang, normalize_title(row.title))]
        assert page["concept"] == row.concept
        expected = {(lang, normalize_title(t)) for lang, t in table.langlinks(row.lang, row.title)}
        got = {(ll["lang"], normalize_title(ll["title"])) for ll in page["langlinks"]}
        assert got == expected
        for ll in page["langlinks"]:
            assert str(wiki_family.wikis[ll["lang"]].port) in ll["url"]
        assert page["wikitext"] and page["source"] == "api" and page["timestamp"] is not None

    sections = ref.read("sections").to_pylist()
    assert {(s["wiki"], s["page_id"]) for s in sections} <= {(p["wiki"], p["page_id"]) for p in pages}
    assert len({(s["wiki"], s["page_id"]) for s in sections}) >= 0.9 * len(pages)
    log = ref.read("fetch_log").to_pylist()
    assert len(log) == len(table.rows) and {r["status"] for r in log} == {"ok"}
    assert ref.manifest()["params"]["source"] == "api"


def test_one_seed_title_is_followed_through_langlinks_to_every_language(wiki_family, data_root):
    table = wiki_family.table
    concept = max(table.concepts(), key=lambda c: len(table.group(c)))
    group = table.group(concept)
    home = wiki_family.home if wiki_family.home in group else sorted(group)[0]
    ref, summary = crawl(
        wiki_family.wikis[home].api_url, titles=[group[home].title], root=str(data_root), name="seed"
    )
    pages = _pages(ref)
    assert {p["lang"] for p in pages} == set(group)
    for p in pages:
        assert normalize_title(p["title"]) == normalize_title(group[p["lang"]].title)
        assert p["concept"] == normalize_title(group[home].title)  # the seed names the concept
    # restricting languages stores only those
    other = sorted(set(group) - {home})[0]
    ref2, _ = crawl(
        wiki_family.wikis[home].api_url,
        titles=[group[home].title],
        langs=[home, other],
        root=str(data_root),
        name="seed2",
    )
    assert {p["lang"] for p in _pages(ref2)} == {home, other}


def test_second_run_makes_no_content_requests(wiki_family, full_crawl):
    root, ref1, first = full_crawl
    home_url = wiki_family.wikis[wiki_family.home].api_url
    ref2, second = crawl(home_url, concepts=wiki_family.table, root=str(root), name="t")
    assert first["content_requests"] >= 1 and first["fetched"] == first["pages"]
    assert second["content_requests"] == 0 and second["reused"] == second["pages"] == first["pages"]
    assert second["requests"] == first["requests"] - first["content_requests"]
    assert ref2.manifest()["parents"] == [{"dataset": "t-wiki", "version": ref1.version}]
    key = ["wiki", "page_id", "rev_id", "wikitext"]
    assert sorted(map(tuple, (map(p.get, key) for p in _pages(ref1)))) == sorted(
        map(tuple, (map(p.get, key) for p in _pages(ref2)))
    )
    assert ref1.read("sections").equals(ref2.read("sections"))


def test_missing_invalid_redirect_and_disambiguation_titles_are_records(wiki_family, data_root):
    home = wiki_family.home
    titles = ["Wikimix no such page 12345", "Bad[title]", REDIRECT_TITLE, DISAMBIGUATION_TITLE]
    ref, summary = crawl(
        wiki_family.wikis[home].api_url, titles=titles, langs=[home], root=str(data_root), name="errs"
    )
    log = {r["requested_title"]: r for r in ref.read("fetch_log").to_pylist()}
    assert log["Wikimix no such page 12345"]["status"] == "missing"
    assert log["Bad[title]"]["status"] == "invalid"
    assert log[REDIRECT_TITLE]["status"] == "redirect"
    assert normalize_title(wiki_family.redirect_target) in log[REDIRECT_TITLE]["detail"]
    assert log[DISAMBIGUATION_TITLE]["status"] == "disambiguation"
    pages = _pages(ref)
    assert [p["redirected_from"] for p in pages] == [REDIRECT_TITLE]
    assert normalize_title(pages[0]["title"]) == normalize_title(wiki_family.redirect_target)
    assert summary["statuses"] == {"missing": 1, "invalid": 1, "redirect": 1, "disambiguation": 1}


def test_fetch_concepts_returns_the_version_and_calls_the_rate_limit_before_each_request(
    wiki_family, data_root
):
    calls = []
    home = wiki_family.home
    table = wiki_family.table.subset([home])
    table = type(table)(table.rows[:7])
    ref = fetch_concepts(
        wiki_family.api_urls(),
        table,
        root=str(data_root),
        name="rl",
        langs=[home],
        rate_limit=lambda: calls.append(1),
    )
    _, summary = crawl(wiki_family.api_urls(), concepts=table, langs=[home], root=str(data_root), name="rl2")
    assert ref.num_rows("pages") == len(table.rows) == 7
    assert len(calls) == summary["requests"]  # same crawl, same number of requests, each rate-limited


def test_user_agent_and_maxlag_go_with_every_api_call(wiki_family, data_root):
    from pipeline.mwapi import Stats, WikiSite

    seen = []
    config = FetchConfig(user_agent="wikimix-test/1.0 (https://example.org/wikimix; test@example.org)")
    site = WikiSite(wiki_family.wikis[wiki_family.home].api_url, config, Stats())
    site.connection.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    site.query(meta="siteinfo", siprop="general")
    assert seen[0].headers["User-Agent"].startswith("wikimix-test/1.0 (https://example.org/wikimix")
    assert "maxlag=5" in seen[0].url and seen[0].method == "GET"
    with pytest.raises(FetchError, match="API error from 127.0.0.1:.*badvalue"):
        site.call(action="no-such-action")


def test_bad_home_wiki_url_is_a_config_error(data_root):
    from wikimix.errors import ConfigError

    with pytest.raises(ConfigError, match="not an api.php URL"):
        crawl("127.0.0.1/nothing", titles=["X"], root=str(data_root))
    with pytest.raises(FetchError):  # nothing listens there: one line, after bounded retries
        crawl(
            "http://127.0.0.1:9/api.php",
            titles=["X"],
            root=str(data_root),
            config=FetchConfig(max_retries=1, backoff_s=0.01),
        )


def test_category_members_seed_a_crawl(wiki_family, data_root):
    from pipeline.mwapi import category_titles

    home = wiki_family.wikis[wiki_family.home]
    members = [f"Wikimix member {i}" for i in range(3)]
    home.import_pages(
        [
            {"title": t, "wikitext": f"'''{t}''' is a test page.\n\n[[Category:Wikimix members]]"}
            for t in members
        ],
        parse_links=True,  # MediaWiki's own LinksUpdate fills categorylinks
    )
    assert sorted(category_titles(home.api_url, "Wikimix members")) == members
    with pytest.raises(FetchError, match="has no articles"):
        category_titles(home.api_url, "Category:Wikimix nothing here")
    ref, _ = crawl(
        home.api_url, titles=category_titles(home.api_url, "Wikimix members"), root=str(data_root), name="cat"
    )
    assert sorted(p["title"] for p in _pages(ref)) == members
