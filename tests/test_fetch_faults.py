"""Fault tests against the real local MediaWiki family: a server killed midway (restarted in time, or
not), maxlag back-off (`maxlag=-2` always trips on a single-database wiki), a dead port, an interrupted
crawl resumed. Every page must end up stored exactly once."""

from __future__ import annotations

import threading

import pytest

from pipeline.concepts import ConceptTable
from pipeline.fetch import crawl
from pipeline.mwapi import FetchConfig
from tests.fixtures_wiki import free_port_base
from wikimix.guards import EmptyResultError

pytestmark = pytest.mark.mediawiki


class Interrupt(BaseException):
    """Stands for Ctrl-C / a killed worker: nothing in the crawler may swallow it."""


def _small_table(family, n_langs: int = 2, n_concepts: int = 14) -> ConceptTable:
    """The first concepts of the first languages (crawled with langs= so langlinks stay inside)."""
    table = family.table.subset(family.table.langs()[:n_langs])
    keep = set(table.concepts()[:n_concepts])
    return ConceptTable([r for r in table.rows if r.concept in keep])


def _keys(ref) -> list[tuple]:
    return sorted((p["wiki"], p["page_id"], p["rev_id"]) for p in ref.read("pages").to_pylist())


def _assert_every_page_once(ref, table: ConceptTable) -> None:
    from pipeline.concepts import normalize_title

    pages = ref.read("pages").to_pylist()
    assert len(pages) == len({(p["wiki"], p["page_id"]) for p in pages}), "a page stored twice"
    stored = {(p["lang"], normalize_title(p["title"])) for p in pages}
    assert {(r.lang, normalize_title(r.title)) for r in table.rows} <= stored


def test_server_killed_midway_and_restarted_completes_with_every_page_once(wiki_family, data_root):
    table = _small_table(wiki_family)
    victim = wiki_family.wikis[table.langs()[-1]]  # content for it is fetched after the first language
    killed = []

    def progress(event: str, info: dict) -> None:
        if event == "fetched" and not killed:
            killed.append(info["lang"])
            victim.stop()
            threading.Timer(1.0, victim.start).start()

    config = FetchConfig(batch_size=5, backoff_s=0.5, max_retries=6)
    try:
        ref, summary = crawl(
            wiki_family.api_urls(),
            concepts=table,
            langs=table.langs(),
            root=str(data_root),
            config=config,
            progress=progress,
        )
    finally:
        victim.wait_up(30)
    assert killed and summary["retries"] >= 1 and summary["errors"] == 0
    _assert_every_page_once(ref, table)


def test_server_down_for_good_is_recorded_and_a_rerun_completes_the_rest(wiki_family, data_root):
    table = _small_table(wiki_family)
    victim = wiki_family.wikis[table.langs()[-1]]
    config = FetchConfig(batch_size=5, backoff_s=0.01, max_retries=1)

    def progress(event: str, info: dict) -> None:
        if event == "fetched" and info["lang"] != victim.lang and victim.pid is not None:
            victim.stop()

    try:
        ref1, first = crawl(
            wiki_family.api_urls(),
            concepts=table,
            langs=table.langs(),
            root=str(data_root),
            config=config,
            progress=progress,
        )
    finally:
        victim.start()
    log = ref1.read("fetch_log").to_pylist()
    errors = [r for r in log if r["status"] == "error"]
    assert errors and all(r["lang"] == victim.lang and "cannot reach" in r["detail"] for r in errors)
    assert first["pages"] == len(table.rows) - len(errors)

    ref2, second = crawl(
        wiki_family.api_urls(), concepts=table, langs=table.langs(), root=str(data_root), config=config
    )
    assert second["errors"] == 0 and second["reused"] == first["pages"]
    assert second["fetched"] == len(errors)
    assert second["content_requests"] == -(-len(errors) // config.batch_size)  # only the missing batches
    _assert_every_page_once(ref2, table)


def test_interrupted_crawl_resumes_without_losing_or_duplicating_pages(wiki_family, data_root):
    table = _small_table(wiki_family)
    config = FetchConfig(batch_size=5)
    staged: list[tuple[str, int]] = []  # (lang, pages) of each content batch staged before the interrupt

    def progress(event: str, info: dict) -> None:
        if event == "fetched":
            staged.append((info["lang"], info["pages"]))
            if len(staged) == 3:
                raise Interrupt()

    args = dict(concepts=table, langs=table.langs(), root=str(data_root), name="r", config=config)
    with pytest.raises(Interrupt):
        crawl(wiki_family.api_urls(), progress=progress, **args)
    ref, summary = crawl(wiki_family.api_urls(), resume=True, **args)

    done = sum(n for _, n in staged)
    assert summary["resumed"] == done > 0 and summary["fetched"] == len(table.rows) - done
    remaining = {
        lang: len(table.titles(lang)) - sum(n for l, n in staged if l == lang) for lang in table.langs()
    }
    assert summary["content_requests"] == sum(-(-n // 5) for n in remaining.values())  # only what was left
    assert summary["pages"] == len(table.rows)
    _assert_every_page_once(ref, table)
    assert not (data_root / "r-wiki" / ref.version / ".staging").exists()


def test_maxlag_backs_off_by_retry_after_and_records_errors_when_lag_persists(wiki_family, data_root):
    table = _small_table(wiki_family, 1)
    waits = []
    config = FetchConfig(maxlag=-2, max_retries=2, max_wait_s=120)
    with pytest.raises(EmptyResultError, match=f"none of {len(table.rows)} requested title") as failed:
        crawl(
            wiki_family.api_urls(),
            concepts=table,
            langs=table.langs(),
            root=str(data_root),
            config=config,
            sleep=waits.append,
        )
    assert waits == [5.0, 5.0]  # MediaWiki's Retry-After for maxlag, honoured (not slept in the test)
    log = _uncommitted_log(failed.value, data_root)
    assert len(log) == len(table.rows)
    assert all(r["status"] == "error" and "maxlag=-2" in r["detail"] for r in log)


def _uncommitted_log(error: Exception, data_root) -> list[dict]:
    """Every input failed: nothing committed, the fetch log where the error says."""
    import re

    import pyarrow.parquet as pq

    from storage.store import list_versions

    assert list_versions(str(data_root), "wiki-wiki") == []
    path = re.search(r"fetch log \(not committed\) at (\S+?);", str(error)).group(1)
    return pq.read_table(path).to_pylist()


def test_maxlag_back_off_then_success_once_lag_clears(wiki_family, data_root):
    table = _small_table(wiki_family, 1)
    config = FetchConfig(maxlag=-2, max_retries=3, max_wait_s=0.2)
    waits = []

    def sleep(seconds: float) -> None:  # the lag clears while we wait
        waits.append(seconds)
        config.maxlag = 5

    ref, summary = crawl(
        wiki_family.api_urls(),
        concepts=table,
        langs=table.langs(),
        root=str(data_root),
        config=config,
        sleep=sleep,
    )
    assert waits == [0.2]  # Retry-After 5 capped by max_wait_s
    assert summary["retries"] == 1 and summary["errors"] == 0
    _assert_every_page_once(ref, table)


def test_dead_port_is_an_error_record_for_its_language_only(wiki_family, data_root):
    table = _small_table(wiki_family)
    dead_lang = table.langs()[-1]
    wikis = dict(wiki_family.api_urls())
    wikis[dead_lang] = f"http://127.0.0.1:{free_port_base(1)}/api.php"
    config = FetchConfig(max_retries=1, backoff_s=0.01)
    ref, summary = crawl(wikis, concepts=table, langs=table.langs(), root=str(data_root), config=config)
    log = ref.read("fetch_log").to_pylist()
    dead = [r for r in log if r["lang"] == dead_lang]
    assert dead and all(r["status"] == "error" and "cannot reach" in r["detail"] for r in dead)
    assert all(r["status"] == "ok" for r in log if r["lang"] != dead_lang)
    assert summary["pages"] == len(table.rows) - len(dead)


def test_non_json_answer_is_a_clear_error(wiki_family, data_root):
    # opensearch_desc.php answers XML with 200: pointing the crawler at it ends in records, not a crash
    table = _small_table(wiki_family, 1)
    lang = table.langs()[0]
    wikis = {lang: wiki_family.wikis[lang].server + "/opensearch_desc.php"}
    with pytest.raises(EmptyResultError, match="non-JSON answer") as failed:
        crawl(
            wikis, concepts=table, langs=table.langs(), root=str(data_root), config=FetchConfig(max_retries=0)
        )
    log = _uncommitted_log(failed.value, data_root)
    assert log and all(r["status"] == "error" and "non-JSON answer" in r["detail"] for r in log)
