"""CLI verbs for wikis: a local MediaWiki family, crawling through langlinks, ingesting dumps.

wikimix wiki up --dumps ../shared/corpus/wikipedia --concepts ../shared/corpus/wikipedia/concepts.tsv
wikimix fetch --family --concepts ../shared/corpus/wikipedia/concepts.tsv --name shared
wikimix fetch --api https://en.wikipedia.org/w/api.php --titles "Python (programming language)" --langs de,ja
wikimix wiki down
wikimix ingest --dumps ../shared/corpus/wikipedia --concepts ../shared/corpus/wikipedia/concepts.tsv
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from wikimix.errors import ConfigError

wiki_app = typer.Typer(help="A local MediaWiki family (one SQLite wiki per language) for tests and demos.")


def _langs(value: str | None) -> list[str] | None:
    if not value:
        return None
    from wikimix.guards import check_lang

    langs = [check_lang(x.strip(), "--langs") for x in value.split(",") if x.strip()]
    if not langs:
        raise ConfigError(f"--langs: no language codes in {value!r}")
    return langs


@wiki_app.command("up")
def up(
    dumps: Annotated[Path, typer.Option(help="directory of <lang>wiki-*.xml[.xz|.bz2] dumps")],
    concepts: Annotated[Path, typer.Option(help="concept table (concepts.tsv format)")],
    langs: Annotated[str | None, typer.Option(help="comma-separated languages (default: every dump)")] = None,
    port_base: Annotated[int, typer.Option(help="first port; wiki i listens on port_base + i")] = 8700,
    dir: Annotated[
        Path | None, typer.Option(help="family directory (default $WIKIMIX_WIKI_DIR or <data>/.wikifamily)")
    ] = None,
    all_pages: Annotated[
        bool, typer.Option(help="import every page of the dumps, not only the concepts'")
    ] = False,
    parse_links: Annotated[
        bool,
        typer.Option(help="let MediaWiki parse every page to fill all link tables (slow: ~0.15 s/page)"),
    ] = False,
) -> None:
    """Build one wiki per dump language, import the concept pages with their langlinks, serve them."""
    from wikimix.localwiki import build_family

    if not 1024 <= port_base <= 65000:
        raise ConfigError(f"--port-base must be in 1024..65000, got {port_base}")
    family = build_family(
        dumps,
        concepts,
        dir,
        langs=_langs(langs),
        port_base=port_base,
        all_pages=all_pages,
        parse_links=parse_links,
    )
    for lang, wiki in family.wikis.items():
        typer.echo(f"{lang}\t{wiki.api_url}\t{wiki.pages} pages")
    typer.echo(f"family at {family.dir}; stop with: wikimix wiki down")


@wiki_app.command("down")
def down(dir: Annotated[Path | None, typer.Option(help="family directory")] = None) -> None:
    """Stop every server of the family (by process group)."""
    from wikimix.localwiki import stop_family

    family = stop_family(dir)
    typer.echo(f"stopped {len(family.wikis)} wiki(s) at {family.dir}")


@wiki_app.command("status")
def status(dir: Annotated[Path | None, typer.Option(help="family directory")] = None) -> None:
    """Each wiki of the family: language, API URL, up or down."""
    from wikimix.localwiki import Family, default_family_dir

    family = Family.load(dir or default_family_dir())
    for lang, wiki in family.wikis.items():
        typer.echo(f"{lang}\t{wiki.api_url}\t{'up' if wiki.is_up() else 'down'}")


def fetch(
    api: Annotated[
        str | None, typer.Option(help="api.php URL of the home wiki (others found via langlinks)")
    ] = None,
    family: Annotated[bool, typer.Option("--family", help="crawl the running local family")] = False,
    family_dir: Annotated[Path | None, typer.Option(help="family directory (with --family)")] = None,
    titles: Annotated[str | None, typer.Option(help="seed titles on the home wiki, separated by '|'")] = None,
    category: Annotated[
        str | None, typer.Option(help="seed with the members of this category of the home wiki")
    ] = None,
    concepts: Annotated[
        Path | None, typer.Option(help="concept table: seed every (concept, language) row")
    ] = None,
    langs: Annotated[
        str | None, typer.Option(help="comma-separated languages to store (default: all reached)")
    ] = None,
    name: Annotated[str, typer.Option(help="dataset name prefix: writes <name>-wiki")] = "wiki",
    root: Annotated[str | None, typer.Option(help="data root (default $WIKIMIX_DATA or ./data)")] = None,
    resume: Annotated[
        bool, typer.Option(help="continue the newest interrupted crawl of this dataset")
    ] = False,
    reuse: Annotated[bool, typer.Option(help="reuse revisions stored in the latest version")] = True,
    user_agent: Annotated[
        str | None, typer.Option(help="User-Agent with your contact (Wikimedia policy)")
    ] = None,
    maxlag: Annotated[int, typer.Option(help="maxlag sent with every API call")] = 5,
    batch_size: Annotated[int, typer.Option(help="titles or revisions per request (1..50)")] = 50,
) -> None:
    """Fetch seed pages in every requested language through langlinks into a `<name>-wiki` version."""
    from pipeline.concepts import read_concepts
    from pipeline.fetch import crawl
    from pipeline.mwapi import FetchConfig, category_titles
    from wikimix.localwiki import Family, default_family_dir

    if bool(api) == bool(family):
        raise ConfigError("give exactly one of --api URL or --family")
    config = FetchConfig(maxlag=maxlag, batch_size=batch_size)
    if user_agent:
        config = FetchConfig(user_agent=user_agent, maxlag=maxlag, batch_size=batch_size)
    wikis: str | dict[str, str] = api
    if family:
        wikis = Family.load(family_dir or default_family_dir()).api_urls()
        if titles or category:
            raise ConfigError("--titles/--category need one home wiki: use --api with a family wiki's URL")
    seeds = [t for t in (titles or "").split("|") if t.strip()]
    if category:
        seeds += category_titles(api, category, config)
    table = read_concepts(concepts) if concepts else None
    ref, summary = crawl(
        wikis,
        titles=seeds,
        concepts=table,
        langs=_langs(langs),
        root=root,
        name=name,
        resume=resume,
        previous="latest" if reuse else None,
        config=config,
        progress=lambda event, info: (
            typer.echo(f"{event}: {json.dumps(info, default=str)}", err=True) if event != "done" else None
        ),
    )
    shown = {k: v for k, v in summary.items() if k not in ("waits_s", "wikis")}
    typer.echo(json.dumps(shown, default=str))
    typer.echo(f"wrote {ref} ({ref.path})")


def ingest(
    dumps: Annotated[Path, typer.Option(help="directory of <lang>wiki-*.xml[.xz|.bz2] dumps")],
    concepts: Annotated[
        Path, typer.Option(help="concept table (concepts.tsv format): langlinks and concepts")
    ],
    langs: Annotated[str | None, typer.Option(help="comma-separated languages (default: every dump)")] = None,
    name: Annotated[str, typer.Option(help="dataset name prefix: writes <name>-wiki")] = "dump",
    root: Annotated[str | None, typer.Option(help="data root (default $WIKIMIX_DATA or ./data)")] = None,
    all_pages: Annotated[
        bool, typer.Option(help="store every article, not only the concept table's")
    ] = False,
) -> None:
    """Build the same `<name>-wiki` dataset (pages, sections, fetch_log) from dumps, without a server."""
    from pipeline.dump import ingest_dumps

    ref, reports = ingest_dumps(
        dumps, concepts, root=root, name=name, langs=_langs(langs), concepts_only=not all_pages
    )
    for lang, r in reports.items():
        cut = f", truncated: {r.detail}" if r.truncated else ""
        typer.echo(f"{lang}\t{r.wiki}\tread {r.pages_read} pages, kept {r.pages_kept}{cut}")
    typer.echo(f"wrote {ref} ({ref.path})")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.add_typer(wiki_app, name="wiki")
    app.command("fetch")(fetch)
    app.command("ingest")(ingest)
