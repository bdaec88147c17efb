"""Crawler pieces that need no server: language -> wiki mapping, config checks, disambiguation test."""

from __future__ import annotations

import json

import pytest

from pipeline.fetch import is_disambiguation
from pipeline.mwapi import FetchConfig, api_url_from_page_url, check_api_url, langlink_wikis
from wikimix.errors import ConfigError


def test_language_maps_to_its_wiki_through_langlink_urls_not_host_formatting(shared_dir):
    # a real enwiki answer: language code and host differ for gsw (als) and nb (no)
    data = json.loads(
        (shared_dir / "corpus/api/enwiki-langlinks-python-programming-language.json").read_text()
    )
    page = next(iter(data["query"]["pages"].values()))
    wikis = langlink_wikis(page["langlinks"])
    assert wikis["gsw"] == "https://als.wikipedia.org/w/api.php"
    assert wikis["nb"] == "https://no.wikipedia.org/w/api.php"
    assert wikis["de"] == "https://de.wikipedia.org/w/api.php"
    assert len(wikis) == len(page["langlinks"]) > 50


@pytest.mark.parametrize(
    "url, api",
    [
        ("https://als.wikipedia.org/wiki/Python_(Programmiersprache)", "https://als.wikipedia.org/w/api.php"),
        ("https://no.wikipedia.org/wiki/$1", "https://no.wikipedia.org/w/api.php"),
        ("http://127.0.0.1:8701/index.php?title=%D0%9A", "http://127.0.0.1:8701/api.php"),
        ("http://wiki.example.org/mw/index.php?title=$1", "http://wiki.example.org/mw/api.php"),
        ("https://example.org/page/X", None),
        ("not a url", None),
    ],
)
def test_api_url_from_page_url(url, api):
    assert api_url_from_page_url(url) == api


def test_config_is_checked():
    with pytest.raises(ConfigError, match="batch_size"):
        FetchConfig(batch_size=51)
    with pytest.raises(ConfigError, match="contact"):
        FetchConfig(user_agent="python-requests")
    with pytest.raises(ConfigError, match="max_rounds"):
        FetchConfig(max_rounds=0)
    with pytest.raises(ConfigError, match="not an api.php URL"):
        check_api_url("https://en.wikipedia.org/wiki/Main_Page")
    assert FetchConfig().maxlag == 5 and "@" in FetchConfig().user_agent


def test_disambiguation_pages_by_wikitext():
    assert is_disambiguation("'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n{{Disambiguation}}")
    assert is_disambiguation("{{Неоднозначність}}\n'''Меркурій''':")
    assert is_disambiguation("{{ 曖昧さ回避 |水星}}")
    assert is_disambiguation("__DISAMBIG__ x")
    assert not is_disambiguation("{{Infobox planet|name=Mercury}} '''Mercury''' is a planet.")
