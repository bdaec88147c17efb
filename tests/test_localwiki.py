"""The local MediaWiki family itself: siteinfo and interwikis, langlinks as MediaWiki computes them,
stopping by process group, and the `wikimix wiki` / `fetch` / `ingest` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO
from tests.fixtures_wiki import free_port_base
from wikimix.localwiki import Family, LocalWiki
from wikimix.localwiki.family import port_is_free

pytestmark = pytest.mark.mediawiki


def _api(wiki: LocalWiki, **params) -> dict:
    query = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in params.items())
    with urllib.request.urlopen(f"{wiki.api_url}?format=json&formatversion=2&{query}", timeout=30) as resp:
        return json.load(resp)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wikimix.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_each_wiki_knows_its_language_and_its_siblings(wiki_family):
    for lang, wiki in wiki_family.wikis.items():
        q = _api(wiki, action="query", meta="siteinfo", siprop="general|interwikimap")["query"]
        assert q["general"]["lang"] == lang and q["general"]["wikiid"] == wiki.dbname
        siblings = {e["prefix"]: e for e in q["interwikimap"] if e["prefix"] in wiki_family.wikis}
        assert set(siblings) == set(wiki_family.wikis)
        for other_lang, entry in siblings.items():
            assert entry["api"] == wiki_family.wikis[other_lang].api_url and "language" in entry
        assert siblings[lang].get("localinterwiki") is True  # $wgLocalInterwikis


def test_langlink_rows_match_what_mediawiki_links_update_writes(wiki_family):
    """The fast import writes langlinks rows itself; MediaWiki's own parse must give the same ones."""
    home = wiki_family.wikis[wiki_family.home]
    others = sorted(set(wiki_family.wikis) - {home.lang})[:2]
    links = [{"lang": lang, "title": f"Wikimix test {lang}"} for lang in others]
    text = "Wikimix test page.\n\n== Part ==\nText."
    home.import_pages(
        [{"title": "Wikimix parsed links", "wikitext": text, "langlinks": links}], parse_links=True
    )
    home.import_pages([{"title": "Wikimix written links", "wikitext": text, "langlinks": links}])
    pages = _api(home, action="query", prop="langlinks", titles="Wikimix parsed links|Wikimix written links")
    got = {p["title"]: [(ll["lang"], ll["title"]) for ll in p["langlinks"]] for p in pages["query"]["pages"]}
    assert (
        got["Wikimix parsed links"]
        == got["Wikimix written links"]
        == [(x["lang"], x["title"]) for x in links]
    )


def test_stop_kills_the_whole_process_group_and_start_serves_again(wiki_family):
    wiki = wiki_family.wikis[sorted(wiki_family.wikis)[-1]]
    pgid = wiki.pid
    assert len(_live_members(pgid)) >= 2  # php -S forked PHP_CLI_SERVER_WORKERS children
    wiki.stop()
    try:
        assert not _live_members(pgid)
        assert port_is_free(wiki.port) and not wiki.is_up()
    finally:
        wiki.start()
    assert wiki.is_up()


def _live_members(pgid: int) -> list[str]:
    """Processes of the group that still run (a zombie waits only for its parent to reap it)."""
    live = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state, _ppid, group = fh.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            live.append(pid)
    return live


def test_cli_status_and_down_of_a_family(wiki_family, tmp_path):
    # a second family serving the home wiki's database on another port: `wiki down` must stop it
    home = wiki_family.wikis[wiki_family.home]
    other = Family(tmp_path, {home.lang: LocalWiki(home.lang, home.dbname, free_port_base(1), home.dir)})
    other.start()
    try:
        status = _cli("wiki", "status", "--dir", str(tmp_path))
        assert status.returncode == 0 and status.stdout.split() == [
            home.lang,
            other.wikis[home.lang].api_url,
            "up",
        ]
        down = _cli("wiki", "down", "--dir", str(tmp_path))
        assert down.returncode == 0 and "stopped 1 wiki" in down.stdout
        assert not LocalWiki(**{**Family.load(tmp_path).wikis[home.lang].__dict__}).is_up()
    finally:
        other.stop()


def test_cli_errors_are_one_line_with_exit_2(wiki_source, wiki_family, tmp_path):
    busy = wiki_family.wikis[wiki_family.home].port
    up = _cli("wiki", "up", "--dumps", str(wiki_source.dumps), "--concepts", str(wiki_source.concepts),
              "--port-base", str(busy), "--dir", str(tmp_path / "f"))  # fmt: skip
    assert up.returncode == 2 and up.stderr.strip().startswith("error: port") and "in use" in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1
    missing = _cli("wiki", "down", "--dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no wiki family" in missing.stderr
    both = _cli("fetch", "--titles", "X")
    assert both.returncode == 2 and "exactly one of --api" in both.stderr


def test_cli_fetch_from_the_family_and_ingest_from_dumps(wiki_source, wiki_family, tmp_path):
    from pipeline.concepts import read_concepts
    from storage.store import open_version

    lang = wiki_family.home
    table = read_concepts(wiki_source.concepts)
    small = tmp_path / "concepts.tsv"
    lines = wiki_source.concepts.read_text().splitlines()
    keep = [line for line in lines[1:] if line.split("\t")[2] == lang][:3]
    small.write_text("\n".join([lines[0], *keep]) + "\n")
    fetch = _cli("fetch", "--family", "--family-dir", str(wiki_family.dir), "--concepts", str(small),
                 "--langs", lang, "--name", "cli", "--root", str(tmp_path / "data"))  # fmt: skip
    assert fetch.returncode == 0, fetch.stderr
    summary = json.loads(fetch.stdout.splitlines()[0])
    assert summary["pages"] == 3 and summary["errors"] == 0
    ref = open_version(str(tmp_path / "data"), "cli-wiki")
    assert sorted(p["title"] for p in ref.read("pages").to_pylist()) == sorted(k.split("\t")[3] for k in keep)

    ingest = _cli("ingest", "--dumps", str(wiki_source.dumps), "--concepts", str(wiki_source.concepts),
                  "--langs", lang, "--name", "dump", "--root", str(tmp_path / "data"))  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    dump_ref = open_version(str(tmp_path / "data"), "dump-wiki")
    assert dump_ref.num_rows("pages") == len(table.titles(lang))
