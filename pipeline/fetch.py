"""Fetch multilingual Wikipedia through interlanguage links: a batched, polite, resumable crawler.

    from pipeline.fetch import crawl
    ref, summary = crawl("https://en.wikipedia.org/w/api.php", titles=["Python (programming language)"],
                         langs=["de", "ja"], root="data", name="demo")
    ref, summary = crawl(family.api_urls(), concepts=read_concepts("concepts.tsv"), root="data")

CLI: `wikimix fetch --api URL --titles T1,T2 --langs de,ja` or `wikimix fetch --concepts concepts.tsv`.

How it works (pipeline.mwapi does the HTTP, with the one retry layer; pipeline.fetch_resume the
staging and reuse):
1. Resolve: `action=query&prop=info|langlinks|pageprops` with up to 50 titles per request (`redirects`,
   `lllimit=max`, `llprop=url`), following `continue`. Each requested title ends as one fetch_log record:
   ok | redirect (followed) | missing | invalid | disambiguation | error. Langlinks of resolved pages add
   the same concept's titles in the other requested languages (rounds until nothing new). A language's
   wiki comes from the wiki's interwikimap or the langlink URLs, never from formatting a host name
   (`gsw` lives at als.wikipedia.org, `nb` at no.wikipedia.org).
2. Content: `prop=revisions&revids=...` (50 per request) for every revision not already stored: in the
   previous committed version of the dataset (a re-run makes no content requests) or in the staging
   files of an interrupted run (resume with `resume=True`). Each content batch is staged to disk as soon
   as it arrives, so an interruption loses at most the batch in flight; assembly deduplicates by
   (wiki, page_id, rev_id), so every page is stored exactly once.
3. Store: a `<name>-wiki` version with pages and sections (one shard per wiki) and fetch_log.

Politeness (User-Agent with contact, maxlag, Retry-After, bounded back-off, the `rate_limit()` hook)
lives in pipeline.mwapi.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.concepts import ConceptTable, normalize_title
from pipeline.fetch_resume import Staging, newest_uncommitted, previous_version, stored_pages, stored_sections
from pipeline.mwapi import (
    FetchConfig,
    FetchError,
    Stats,
    WikiSite,
    api_url_from_page_url,
    check_api_url,
    langlink_wikis,
)
from pipeline.sections import sections_from_page
from wikimix.errors import ConfigError
from wikimix.guards import UnsafePathError, check_lang, check_wiki_id, require_rows

DISAMBIGUATION_TEMPLATES = {
    "disambig", "disambiguation", "dab", "begriffsklärung", "desambiguación", "homonymie",
    "неоднозначность", "многозначность", "неоднозначність", "曖昧さ回避", "aimai", "trang định hướng",
    "định hướng", "երկիմաստություն", "निःसंदिग्धीकरण", "消歧义", "消歧義",
}  # fmt: skip


TEMPLATE_NAME = re.compile(r"\{\{\s*([^{}|\n]+?)\s*[|}]")


def is_disambiguation(wikitext: str) -> bool:
    """A disambiguation page by its wikitext: the __DISAMBIG__ magic word or a known template."""
    if "__DISAMBIG__" in wikitext:
        return True
    for match in TEMPLATE_NAME.finditer(wikitext[:20000] + wikitext[-5000:]):
        if match.group(1).strip().replace("_", " ").lower() in DISAMBIGUATION_TEMPLATES:
            return True
    return False


def _ts(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if value else None


# --- the crawl ------------------------------------------------------------------------------------


@dataclass
class Wiki:
    lang: str
    api_url: str
    site: WikiSite | None = None
    wiki_id: str = ""
    error: str | None = None


@dataclass
class Resolved:
    """A page found in phase 1: what to fetch and what to record."""

    wiki: str
    lang: str
    page_id: int
    rev_id: int
    title: str
    concept: str | None
    url: str | None
    redirected_from: str | None
    langlinks: list[dict]


class Crawl:
    """The state of one crawl; `crawl()` below is the function to call."""

    def __init__(
        self,
        config: FetchConfig,
        rate_limit: Callable[[], None] | None,
        progress: Callable[[str, dict], None] | None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.rate_limit = rate_limit
        self.progress = progress or (lambda event, info: None)
        self.sleep = sleep
        self.stats = Stats()
        self.wikis: dict[str, Wiki] = {}
        self.log: list[dict] = []
        self.resolved: dict[tuple[str, int], Resolved] = {}

    # wikis
    def add_wiki(self, lang: str, api_url: str) -> None:
        if lang not in self.wikis:
            self.wikis[lang] = Wiki(lang, api_url)

    def open_wiki(self, lang: str) -> Wiki:
        """The wiki of a language, with its site info read once; `error` set when it cannot be used."""
        wiki = self.wikis.get(lang)
        if wiki is None:
            wiki = self.wikis[lang] = Wiki(lang, "", error=f"no wiki known for language {lang!r}")
        if wiki.site is None and wiki.error is None:
            try:
                self._connect(wiki)
            except FetchError as exc:
                wiki.error = str(exc)
        return wiki

    def _connect(self, wiki: Wiki) -> dict:
        """Read the wiki's siteinfo (id, language) and learn its siblings from the interwikimap."""
        site = WikiSite(wiki.api_url, self.config, self.stats, self.rate_limit, self.sleep)
        info = site.query(meta="siteinfo", siprop="general|interwikimap")
        general = info.get("general") or {}
        # the id names staging files: a server must not choose a path. Without one, Wikimedia's
        # dbname convention: zh-min-nan -> zh_min_nanwiki
        fallback = f"{(wiki.lang or general.get('lang') or 'und').replace('-', '_')}wiki"
        try:
            wiki_id = check_wiki_id(general.get("wikiid") or fallback, f"siteinfo of {wiki.api_url}")
        except UnsafePathError as exc:
            raise FetchError(str(exc)) from None
        wiki.site = site
        wiki.wiki_id = wiki_id
        for entry in info.get("interwikimap") or []:
            if "language" in entry:
                api = entry.get("api") or api_url_from_page_url(entry.get("url", ""))
                if api:
                    self.add_wiki(entry["prefix"], api)
        return general

    def open_home(self, api_url: str) -> str:
        """Connect to the home wiki; its language is the one its siteinfo names. Returns that language."""
        wiki = Wiki("", api_url)
        try:
            general = self._connect(wiki)
        except FetchError as exc:
            raise FetchError(f"home wiki unusable: {exc}") from None
        wiki.lang = check_lang(general.get("lang") or "und", f"siteinfo of {api_url}")
        self.wikis[wiki.lang] = wiki
        return wiki.lang

    def record(self, wiki: Wiki, title: str, concept: str | None, status: str, detail: str | None = None,
               page_id: int | None = None, rev_id: int | None = None) -> None:  # fmt: skip
        self.log.append(
            {
                "wiki": wiki.wiki_id or f"{wiki.lang}wiki",
                "lang": wiki.lang,
                "concept": concept,
                "requested_title": title,
                "status": status,
                "detail": detail,
                "page_id": page_id,
                "rev_id": rev_id,
                "logged_at": datetime.now(UTC),
            }
        )

    # phase 1
    def resolve(self, seeds: dict[str, dict[str, str | None]], langs: set[str] | None) -> None:
        """Resolve {lang: {title: concept}} in rounds, adding titles found through langlinks."""
        asked: set[tuple[str, str]] = set()
        have_concept: set[tuple[str, str]] = set()  # (lang, concept) already resolved
        pending = seeds
        for _round in range(self.config.max_rounds):
            if not pending:
                break
            found: dict[str, dict[str, str | None]] = {}
            for lang, titles in sorted(pending.items()):
                titles = {t: c for t, c in titles.items() if (lang, normalize_title(t)) not in asked}
                asked.update((lang, normalize_title(t)) for t in titles)
                if titles:
                    self._resolve_wiki(lang, titles, langs, found, have_concept)
            pending = {
                lang: {t: c for t, c in titles.items() if (lang, c) not in have_concept}
                for lang, titles in found.items()
            }
            pending = {lang: titles for lang, titles in pending.items() if titles}

    def _resolve_wiki(self, lang, titles, langs, found, have_concept) -> None:
        wiki = self.open_wiki(lang)
        if wiki.error:
            for title, concept in titles.items():
                self.record(wiki, title, concept, "error", wiki.error)
            return
        items = sorted(titles.items())
        for start in range(0, len(items), self.config.batch_size):
            batch = items[start : start + self.config.batch_size]
            try:
                result = wiki.site.query(
                    prop="info|langlinks|pageprops",
                    inprop="url",
                    ppprop="disambiguation",
                    lllimit="max",
                    llprop="url",
                    redirects="1",
                    titles="|".join(t for t, _ in batch),
                )
            except FetchError as exc:
                for title, concept in batch:
                    self.record(wiki, title, concept, "error", str(exc))
                continue
            normalized = {n["from"]: n["to"] for n in result.get("normalized", [])}
            redirects = {r["from"]: r["to"] for r in result.get("redirects", [])}
            by_title = {p["title"]: p for p in result["pages"]}
            for title, concept in batch:
                self._resolve_title(
                    wiki, title, concept, normalized, redirects, by_title, langs, found, have_concept
                )
            self.progress("resolved", {"lang": lang, "titles": len(batch), "requests": self.stats.requests})

    def _resolve_title(
        self, wiki, title, concept, normalized, redirects, by_title, langs, found, have_concept
    ):
        name = normalized.get(title, title)
        redirected_from = None
        if name in redirects:
            redirected_from, name = title, redirects[name]
        page = by_title.get(name)
        if page is None or page.get("missing"):
            self.record(wiki, title, concept, "missing", f"no page {name!r} on {wiki.wiki_id}")
            return
        if page.get("invalid"):
            self.record(wiki, title, concept, "invalid", page.get("invalidreason", "invalid title"))
            return
        if "disambiguation" in (page.get("pageprops") or {}):
            self.record(wiki, title, concept, "disambiguation", f"{name!r} is a disambiguation page",
                        page.get("pageid"), page.get("lastrevid"))  # fmt: skip
            return
        key = (wiki.wiki_id, int(page["pageid"]))
        status, detail = ("redirect", f"-> {name}") if redirected_from else ("ok", None)
        if key in self.resolved:
            detail = f"same page as {self.resolved[key].title!r} (concept {self.resolved[key].concept!r})"
        else:
            langlinks = [
                {"lang": ll["lang"], "title": ll.get("title", ll.get("*")), "url": ll.get("url")}
                for ll in page.get("langlinks", [])
            ]
            self.resolved[key] = Resolved(
                wiki=wiki.wiki_id,
                lang=wiki.lang,
                page_id=int(page["pageid"]),
                rev_id=int(page["lastrevid"]),
                title=page["title"],
                concept=concept,
                url=page.get("canonicalurl") or page.get("fullurl"),
                redirected_from=redirected_from,
                langlinks=langlinks,
            )
            have_concept.add((wiki.lang, concept))
            for lang, api in langlink_wikis(langlinks).items():
                self.add_wiki(lang, api)
            if self.config.follow_langlinks:
                for ll in langlinks:
                    if (langs is None or ll["lang"] in langs) and (ll["lang"], concept) not in have_concept:
                        found.setdefault(ll["lang"], {}).setdefault(ll["title"], concept)
        self.record(wiki, title, concept, status, detail, int(page["pageid"]), int(page["lastrevid"]))

    # phase 2
    def fetch_content(self, lang: str, rev_ids: list[int], stage: Callable[[list[dict]], None]) -> None:
        """Fetch the wikitext of revisions, batch by batch, staging each batch as it arrives."""
        wiki = self.wikis[lang]
        by_rev = {r.rev_id: r for r in self.resolved.values() if r.lang == lang}
        for start in range(0, len(rev_ids), self.config.batch_size):
            batch = rev_ids[start : start + self.config.batch_size]
            try:
                result = wiki.site.query(
                    content=True,
                    prop="revisions",
                    rvprop="ids|timestamp|content",
                    rvslots="main",
                    revids="|".join(map(str, batch)),
                )
            except FetchError as exc:
                for rev_id in batch:
                    r = by_rev[rev_id]
                    self.record(wiki, r.title, r.concept, "error", f"content: {exc}", r.page_id, rev_id)
                continue
            now = datetime.now(UTC)
            rows = []
            for page in result["pages"]:
                for rev in page.get("revisions", []):
                    if rev["revid"] not in by_rev:
                        continue
                    main = (rev.get("slots") or {}).get("main", {})
                    rows.append(
                        {
                            "wiki": wiki.wiki_id,
                            "lang": lang,
                            "page_id": int(page["pageid"]),
                            "rev_id": int(rev["revid"]),
                            "title": page["title"],
                            "timestamp": _ts(rev.get("timestamp")),
                            "wikitext": main.get("content", rev.get("content", "")) or "",
                            "fetched_at": now,
                            "source": "api",
                        }
                    )
            got = {row["rev_id"] for row in rows}
            for rev_id in batch:
                if rev_id not in got:
                    r = by_rev[rev_id]
                    self.record(
                        wiki,
                        r.title,
                        r.concept,
                        "error",
                        "revision not returned (deleted?)",
                        r.page_id,
                        rev_id,
                    )
            stage(rows)
            self.progress("fetched", {"lang": lang, "pages": len(rows), "requests": self.stats.requests})

    def mark_disambiguation(self, r: Resolved) -> None:
        for row in self.log:
            if row["wiki"] == r.wiki and row["page_id"] == r.page_id and row["status"] in ("ok", "redirect"):
                row["status"], row["detail"] = "disambiguation", f"{r.title!r} is a disambiguation page"

    def page_row(self, r: Resolved, content: dict) -> dict:
        return {
            "wiki": r.wiki,
            "lang": r.lang,
            "page_id": r.page_id,
            "rev_id": r.rev_id,
            "title": r.title,
            "concept": r.concept,
            "url": r.url,
            "timestamp": content["timestamp"],
            "wikitext": content["wikitext"],
            "fetched_at": content["fetched_at"],
            "source": "api",
            "redirected_from": r.redirected_from,
            "langlinks": r.langlinks,
        }


def _seeds(
    home_lang: str | None, titles: Iterable[str], concepts: ConceptTable | None, langs: set[str] | None
) -> dict[str, dict[str, str | None]]:
    seeds: dict[str, dict[str, str | None]] = {}
    titles = [t for t in titles if t and t.strip()]
    if titles:
        if home_lang is None:
            raise ConfigError("seed titles need one home wiki (give an API URL, not a map)")
        for title in titles:
            seeds.setdefault(home_lang, {})[title.strip()] = normalize_title(title)
    if concepts is not None:
        for row in concepts.rows:
            if langs is None or row.lang in langs:
                seeds.setdefault(row.lang, {}).setdefault(row.title, row.concept)
    if not seeds:
        raise ConfigError("nothing to fetch: give seed titles or a concept table (for the requested langs)")
    return seeds


def crawl(
    wikis: str | Mapping[str, str],
    *,
    titles: Iterable[str] = (),
    concepts: ConceptTable | None = None,
    langs: Iterable[str] | None = None,
    root: str | None = None,
    name: str = "wiki",
    version: str | None = None,
    resume: bool = False,
    previous: Any = "latest",
    config: FetchConfig | None = None,
    rate_limit: Callable[[], None] | None = None,
    progress: Callable[[str, dict], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
):
    """Crawl seed titles (on the home wiki) and/or a concept table across languages; store a version.

    wikis: the home wiki's api.php URL (other wikis found through its interwikimap and langlinks), or
    {lang: api_url}. langs: languages to store (None: every language reached). previous: a VersionRef
    whose stored revisions are reused, "latest" (default) for the newest version of `<name>-wiki`, or None.
    resume: continue the newest uncommitted version of the dataset (or `version`).
    Returns (VersionRef, summary dict: requests, content_requests, pages, fetched, reused, errors, ...).
    """
    from storage.store import VersionWriter, _check_name

    _check_name("dataset", f"{name}-wiki")
    config = config or FetchConfig()
    titles = list(titles)
    langs_set = set(langs) if langs is not None else None
    run = Crawl(config, rate_limit, progress, sleep)
    home_lang = None
    if isinstance(wikis, str):
        check_api_url(wikis)
        home_lang = run.open_home(wikis)
    else:
        if not wikis:
            raise ConfigError("no wikis given")
        for lang, url in wikis.items():
            run.add_wiki(lang, check_api_url(url))
    seeds = _seeds(home_lang, titles, concepts, langs_set)

    dataset = f"{name}-wiki"
    dataset_root = root
    if resume and version is None:
        version = newest_uncommitted(dataset_root, dataset)
    prev_ref = previous_version(dataset_root, dataset, previous)
    params = {
        "source": "api",
        "wikis": wikis if isinstance(wikis, str) else dict(wikis),
        "langs": sorted(langs_set) if langs_set else None,
        "titles": sorted(set(titles)) if titles else [],
        "concepts": len(concepts.rows) if concepts is not None else 0,
    }
    writer = VersionWriter(
        dataset_root, dataset, version, params=params, parents=[prev_ref] if prev_ref else []
    )
    staging = Staging(writer)

    run.resolve(seeds, langs_set)
    wanted = {k: r for k, r in run.resolved.items() if langs_set is None or r.lang in langs_set}
    have = staging.load({(r.wiki, r.rev_id) for r in wanted.values()})
    reused_keys: set[tuple[str, int]] = set()
    if prev_ref is not None:
        missing = {(r.wiki, r.rev_id) for r in wanted.values()} - set(have)
        from_prev = stored_pages(prev_ref, missing)
        reused_keys = set(from_prev)
        have.update(from_prev)
    reused = len(reused_keys)
    resumed = len(have) - reused  # staged by an interrupted run of this version
    by_lang: dict[str, list[int]] = {}
    for r in wanted.values():
        if (r.wiki, r.rev_id) not in have:
            by_lang.setdefault(r.lang, []).append(r.rev_id)
    fetched_now = 0

    def stage(rows: list[dict]) -> None:
        nonlocal fetched_now
        have.update(staging.write(rows))
        fetched_now += len(rows)

    for lang, rev_ids in sorted(by_lang.items()):
        run.fetch_content(lang, sorted(rev_ids), stage)

    # assemble: one row per (wiki, page_id, rev_id), one shard per wiki
    pages_by_wiki: dict[str, list[dict]] = {}
    for r in sorted(wanted.values(), key=lambda r: (r.wiki, r.page_id)):
        content = have.get((r.wiki, r.rev_id))
        if content is None:
            continue
        if is_disambiguation(content["wikitext"]):  # wikis without the Disambiguator extension
            run.mark_disambiguation(r)
            continue
        pages_by_wiki.setdefault(r.wiki, []).append(run.page_row(r, content))
    fetch_s = time.monotonic() - run.stats.started
    # sections of reused revisions are copied from the previous version (parsing is the slow part)
    prev_sections = stored_sections(prev_ref, reused_keys) if prev_ref else {}
    wiki_ids = sorted(pages_by_wiki) or ["none"]
    for i, wiki_id in enumerate(wiki_ids):
        pages = pages_by_wiki.get(wiki_id, [])
        sections = []
        for page in pages:
            old = prev_sections.get((page["wiki"], page["rev_id"]))
            if old is None:
                sections.extend(sections_from_page(page))
            else:
                sections.extend({**row, "concept": page["concept"], "title": page["title"]} for row in old)
        writer.write_shard("sections", i, len(wiki_ids), sections)
        writer.write_shard("pages", i, len(wiki_ids), pages)
    log_path = writer.write_table("fetch_log", run.log)[0]
    require_rows(writer, "pages", "fetch", _nothing_stored(run.log, log_path), keep_uncommitted=True)
    staging.clear()
    ref = writer.commit()

    stored = sum(len(p) for p in pages_by_wiki.values())
    statuses = Counter(row["status"] for row in run.log)
    elapsed = time.monotonic() - run.stats.started
    summary = {
        "version": str(ref),
        "requests": run.stats.requests,
        "content_requests": run.stats.content_requests,
        "retries": run.stats.retries,
        "waits_s": list(run.stats.waits),
        "pages": stored,
        "fetched": fetched_now,
        "resumed": resumed,
        "reused": reused,
        "errors": statuses.get("error", 0),
        "statuses": dict(statuses),
        "wikis": {lang: w.api_url for lang, w in run.wikis.items() if w.site is not None},
        "requests_per_page": run.stats.requests / stored if stored else float("nan"),
        "fetch_s": fetch_s,
        "elapsed_s": elapsed,
        "pages_per_s": stored / fetch_s if fetch_s > 0 else 0.0,
    }
    run.progress("done", summary)
    return ref, summary


def _nothing_stored(log: list[dict], log_path: str) -> str:
    """Why a crawl stored no page: how many titles ended how, the first failure, where the log is."""
    statuses = Counter(row["status"] for row in log)
    first = next((row for row in log if row["status"] not in ("ok", "redirect")), None)
    example = f"; first: {first['lang']} {first['requested_title']!r}: {first['detail']}" if first else ""
    counts = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
    return (
        f"none of {len(log)} requested title(s) stored ({counts}){example[:300]}; "
        f"fetch log (not committed) at {log_path}"
    )


def fetch_concepts(
    wikis: str | Mapping[str, str],
    concepts: str | ConceptTable,
    *,
    root: str | None = None,
    name: str = "wiki",
    langs: Iterable[str] | None = None,
    rate_limit: Callable[[], None] | None = None,
    before_request: Callable[[], None] | None = None,
    **kwargs: Any,
):
    """Crawl every (concept, language) row of a concept table (a path or a table); returns the VersionRef.

    `before_request` is another name for `rate_limit` (flows/corpus.py uses it).
    """
    from pipeline.concepts import read_concepts

    table = concepts if isinstance(concepts, ConceptTable) else read_concepts(concepts)
    ref, _summary = crawl(
        wikis,
        concepts=table,
        root=root,
        name=name,
        langs=langs,
        rate_limit=rate_limit or before_request,
        **kwargs,
    )
    return ref
