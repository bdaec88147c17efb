"""Bench: API requests per page-language and pages/s, wikimix's batched crawl vs a naive mwclient loop.

    .venv/bin/wikimix wiki up --dumps ../shared/corpus/wikipedia --concepts ../shared/corpus/wikipedia/concepts.tsv
    .venv/bin/python bench/fetch.py --api http://127.0.0.1:8700/api.php \
        --concepts ../shared/corpus/wikipedia/concepts.tsv
    .venv/bin/python bench/fetch.py --up     # builds the family from the shared dumps (or samples/wiki), stops it after

Both sides fetch every (concept, language) page of the concept table from the same wikis, in one run:
- wikimix: `pipeline.fetch.crawl` (50 titles per langlinks/info request, 50 revisions per content request);
- naive: per page `site.pages[title]` (info), `page.text()` (content), `page.langlinks()` (langlinks), one
  mwclient Site per wiki (its init request included), the loop most scripts write.
Requests are counted at the HTTP session. The last line is `requests_per_page=<x>` for wikimix.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import mwclient  # noqa: E402

from pipeline.concepts import ConceptTable, read_concepts  # noqa: E402
from pipeline.fetch import crawl  # noqa: E402
from pipeline.mwapi import FetchConfig, Stats, WikiSite  # noqa: E402


def family_wikis(api_url: str) -> dict[str, str]:
    """{lang: api_url} of the home wiki and its language siblings (from its interwikimap)."""
    site = WikiSite(api_url, FetchConfig(), Stats())
    info = site.query(meta="siteinfo", siprop="general|interwikimap")
    wikis = {info["general"]["lang"]: api_url}
    for entry in info.get("interwikimap", []):
        if "language" in entry and entry.get("api"):
            wikis.setdefault(entry["prefix"], entry["api"])
    return wikis


def naive(wikis: dict[str, str], table: ConceptTable) -> dict:
    """Page by page with mwclient's high-level API."""
    requests = 0

    def count(resp, *args, **kwargs):
        nonlocal requests
        requests += 1

    start = time.monotonic()
    pages = 0
    for lang in table.langs():
        parts = urlsplit(wikis[lang])
        site = mwclient.Site(
            parts.netloc,
            path=parts.path.rsplit("/", 1)[0] + "/",
            scheme=parts.scheme,
            clients_useragent=FetchConfig().user_agent,
            max_retries=2,
            do_init=False,
        )
        site.connection.hooks["response"].append(count)
        site.site_init()
        for title in sorted(table.titles(lang)):
            page = site.pages[title]
            text = page.text()
            links = list(page.langlinks())
            if page.exists and text:
                pages += 1
            del links
    elapsed = time.monotonic() - start
    return {"pages": pages, "requests": requests, "elapsed_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", help="api.php of one wiki of the family (the others via its interwikimap)")
    parser.add_argument("--concepts", type=Path, help="concept table (default: the family's source)")
    parser.add_argument(
        "--up", action="store_true", help="build and serve a family for the run, then stop it"
    )
    parser.add_argument("--port-base", type=int, default=8750)
    args = parser.parse_args()

    family = None
    if args.up:
        from tests.fixtures_wiki import wiki_sources
        from wikimix.localwiki import build_family

        source = wiki_sources()[0]
        args.concepts = args.concepts or source.concepts
        t = time.monotonic()
        family = build_family(
            source.dumps, args.concepts, Path(tempfile.mkdtemp()) / "family", port_base=args.port_base
        )
        print(f"family: {source.name} corpus, {len(family.wikis)} wikis up in {time.monotonic() - t:.1f} s")
        args.api = family.wikis[sorted(family.wikis)[0]].api_url
    if not args.api or not args.concepts:
        parser.error("give --api and --concepts, or --up")
    try:
        table = read_concepts(args.concepts)
        wikis = family_wikis(args.api)
        table = table.subset([lang for lang in table.langs() if lang in wikis])
        with tempfile.TemporaryDirectory() as root:
            _, ours = crawl(args.api, concepts=table, langs=table.langs(), root=root, previous=None)
        theirs = naive(wikis, table)
    finally:
        if family is not None:
            family.stop()

    n = len(table.rows)
    ours_rpp = ours["requests"] / ours["pages"]
    print(f"page-languages in the table: {n} ({len(table.langs())} wikis)")
    print(
        f"wikimix: pages={ours['pages']} requests={ours['requests']} requests/page={ours_rpp:.3f} "
        f"pages/s={ours['pages'] / ours['fetch_s']:.1f} (fetch {ours['fetch_s']:.2f} s; "
        f"with sections and storage {ours['elapsed_s']:.2f} s)"
    )
    print(
        f"naive:   pages={theirs['pages']} requests={theirs['requests']} "
        f"requests/page={theirs['requests'] / theirs['pages']:.3f} "
        f"pages/s={theirs['pages'] / theirs['elapsed_s']:.1f} (fetch {theirs['elapsed_s']:.2f} s, no storage)"
    )
    print(f"requests_per_page={ours_rpp:.4f}")


if __name__ == "__main__":
    main()
