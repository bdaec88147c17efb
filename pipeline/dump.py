"""Dump source: stream a pages-articles XML dump (plain, .xz, .bz2) into `pages` rows.

For bulk builds where the API is the wrong tool. Real dumps can be truncated (the shared ones are cut
mid-page with no closing </mediawiki>): reading stops cleanly at the cut and the report says how many
pages were read. Modern dumps carry no interlanguage links; they come from a concept table.

    report = DumpReport()
    for page in iter_dump("ukwiki-....xml.xz", concepts=read_concepts("concepts.tsv"), report=report):
        ...
    report.pages_read, report.truncated

    # a whole directory of <lang>wiki-*.xml[.xz|.bz2] into a `<name>-wiki` dataset (pages, sections,
    # fetch_log), no server needed:
    ref = ingest_dumps("../shared/corpus/wikipedia", "concepts.tsv", root="data", name="shared")
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote

from pipeline.concepts import ConceptTable, normalize_title, read_concepts
from pipeline.sections import sections_from_page
from wikimix.errors import WikimixError
from wikimix.guards import check_lang, check_wiki_id, require_rows

DUMP_NAME = re.compile(r"^(?P<prefix>[a-z][a-z0-9_]*?)wiki-.*\.xml(\.xz|\.bz2)?$")


class DumpError(WikimixError):
    """A dump that cannot be opened or is not MediaWiki export XML."""


@dataclass
class SiteInfo:
    """The <siteinfo> of a dump: enough to name the wiki and build page URLs."""

    dbname: str
    lang: str
    sitename: str = ""
    base: str = ""  # URL of the main page; its directory is the article path
    namespaces: dict[int, str] = field(default_factory=dict)

    def page_url(self, title: str) -> str | None:
        if not self.base:
            return None
        quoted = quote(title.replace(" ", "_"), safe="/:()',!*;@$")
        if "title=" in self.base:
            return self.base.split("title=", 1)[0] + "title=" + quoted
        return self.base.rsplit("/", 1)[0] + "/" + quoted


@dataclass
class DumpReport:
    """What one pass over a dump saw; filled in while iterating."""

    path: str = ""
    wiki: str = ""
    lang: str = ""
    pages_read: int = 0  # complete <page> elements parsed
    pages_kept: int = 0  # pages yielded (namespace, redirect and concept filters applied)
    truncated: bool = False
    detail: str = ""


def open_dump(path: str | os.PathLike) -> IO[bytes]:
    """A binary stream of the XML, decompressing .xz and .bz2."""
    path = Path(path)
    try:
        if path.suffix == ".xz":
            return lzma.open(path, "rb")
        if path.suffix == ".bz2":
            return bz2.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise DumpError(f"cannot open dump {path}: {exc.strerror or exc}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


def _siteinfo(elem: ET.Element, root_lang: str, path: Path) -> SiteInfo:
    dbname = _child_text(elem, "dbname") or ""
    m = DUMP_NAME.match(path.name)
    if not dbname:
        dbname = f"{m.group('prefix')}wiki" if m else path.name.split(".", 1)[0]
    lang = root_lang or (dbname[:-4] if dbname.endswith("wiki") else dbname)
    # both name directories and files downstream (the local family): a dump must not choose a path
    check_wiki_id(dbname, f"<dbname> of dump {path.name}")
    check_lang(lang, f"xml:lang of dump {path.name}")
    namespaces = {}
    ns_elem = _child(elem, "namespaces")
    if ns_elem is not None:
        for ns in ns_elem:
            namespaces[int(ns.get("key", "0"))] = ns.text or ""
    return SiteInfo(
        dbname=dbname,
        lang=lang,
        sitename=_child_text(elem, "sitename") or "",
        base=_child_text(elem, "base") or "",
        namespaces=namespaces,
    )


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def iter_dump(
    path: str | os.PathLike,
    *,
    concepts: ConceptTable | None = None,
    namespaces: tuple[int, ...] = (0,),
    redirects: bool = False,
    concepts_only: bool = False,
    report: DumpReport | None = None,
    url_for: Callable[[str, str], str | None] | None = None,
) -> Iterator[dict]:
    """Yield one `pages` row per page of the dump (source 'dump').

    concepts: fills `concept` and `langlinks` (the other languages of the page's concept);
    concepts_only: yield only pages the concept table names; url_for(lang, title): URL of a page in
    another language (default: none), used for langlink URLs. Stops cleanly at a truncation.
    """
    path = Path(path)
    report = report if report is not None else DumpReport()
    report.path = str(path)
    site: SiteInfo | None = None
    fetched_at = datetime.now(UTC)
    stream = open_dump(path)
    try:
        context = ET.iterparse(stream, events=("start", "end"))
        root = None
        for event, elem in context:
            name = _local(elem.tag)
            if event == "start":
                if root is None:
                    root = elem
                    if name != "mediawiki":
                        raise DumpError(f"{path}: not a MediaWiki export (root element <{name}>)")
                continue
            if name == "siteinfo":
                root_lang = root.get("{http://www.w3.org/XML/1998/namespace}lang", "")
                site = _siteinfo(elem, root_lang, path)
                report.wiki, report.lang = site.dbname, site.lang
                root.clear()
            elif name == "page":
                report.pages_read += 1
                if site is None:
                    site = _siteinfo(
                        ET.Element("siteinfo"),
                        root.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
                        path,
                    )
                    report.wiki, report.lang = site.dbname, site.lang
                row = _page_row(
                    elem, site, concepts, namespaces, redirects, concepts_only, fetched_at, url_for
                )
                root.clear()  # keep memory flat: drop the finished page
                if row is not None:
                    report.pages_kept += 1
                    yield row
    except ET.ParseError as exc:
        report.truncated = True
        report.detail = f"XML ends or breaks at line {exc.position[0]}: {exc}"
    except EOFError as exc:  # a compressed stream cut short
        report.truncated = True
        report.detail = f"compressed stream ends early: {exc}"
    except (OSError, lzma.LZMAError) as exc:
        raise DumpError(f"cannot read dump {path}: {exc}") from None
    finally:
        stream.close()


def _page_row(
    elem: ET.Element,
    site: SiteInfo,
    concepts: ConceptTable | None,
    namespaces: tuple[int, ...],
    redirects: bool,
    concepts_only: bool,
    fetched_at: datetime,
    url_for: Callable[[str, str], str | None] | None,
) -> dict | None:
    ns = int(_child_text(elem, "ns") or 0)
    if ns not in namespaces:
        return None
    if _child(elem, "redirect") is not None and not redirects:
        return None
    title = _child_text(elem, "title") or ""
    concept_row = concepts.row(site.lang, title) if concepts is not None else None
    if concepts_only and concept_row is None:
        return None
    revision = _child(elem, "revision")
    if revision is None:
        return None
    text_elem = _child(revision, "text")
    langlinks = []
    if concepts is not None:
        for lang, other in concepts.langlinks(site.lang, title):
            langlinks.append({"lang": lang, "title": other, "url": url_for(lang, other) if url_for else None})
    return {
        "wiki": site.dbname,
        "lang": site.lang,
        "page_id": int(_child_text(elem, "id") or 0),
        "rev_id": int(_child_text(revision, "id") or 0),
        "title": title,
        "concept": concept_row.concept if concept_row else None,
        "url": site.page_url(title),
        "timestamp": _parse_ts(_child_text(revision, "timestamp")),
        "wikitext": (text_elem.text or "") if text_elem is not None else "",
        "fetched_at": fetched_at,
        "source": "dump",
        "redirected_from": None,
        "langlinks": langlinks,
    }


def read_siteinfo(path: str | os.PathLike) -> SiteInfo:
    """The <siteinfo> of a dump (reads only the head of the file)."""
    path = Path(path)
    stream = open_dump(path)
    try:
        root_lang = ""
        for event, elem in ET.iterparse(stream, events=("start", "end")):
            name = _local(elem.tag)
            if event == "start" and name == "mediawiki":
                root_lang = elem.get("{http://www.w3.org/XML/1998/namespace}lang", "")
            elif event == "start" and name == "page":
                break
            elif event == "end" and name == "siteinfo":
                return _siteinfo(elem, root_lang, path)
    except (ET.ParseError, EOFError, OSError, lzma.LZMAError) as exc:
        raise DumpError(f"{path}: cannot read <siteinfo>: {exc}") from None
    finally:
        stream.close()
    return _siteinfo(ET.Element("siteinfo"), root_lang, path)


def find_dumps(directory: str | os.PathLike, langs: list[str] | None = None) -> dict[str, Path]:
    """{lang: dump path} for every `<prefix>wiki-*.xml[.xz|.bz2]` in the directory (lang from siteinfo)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DumpError(f"dump directory not found: {directory}")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not DUMP_NAME.match(path.name):
            continue
        lang = read_siteinfo(path).lang
        if lang in found:
            raise DumpError(f"two dumps for language {lang!r}: {found[lang].name} and {path.name}")
        found[lang] = path
    if langs is not None:
        missing = sorted(set(langs) - set(found))
        if missing:
            raise DumpError(f"no dump for language(s) {', '.join(missing)} in {directory}")
        found = {lang: found[lang] for lang in langs}
    if not found:
        raise DumpError(f"no <lang>wiki-*.xml[.xz|.bz2] dumps in {directory}")
    return found


PAGES_PER_CHUNK = 128  # pages parsed, split and written at a time: memory stays flat however big a dump is


def _chunks(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _note_ids(found: dict[str, dict], page: dict) -> None:
    found.setdefault(normalize_title(page["title"]), {"page_id": page["page_id"], "rev_id": page["rev_id"]})


def _log_rows(table: ConceptTable, wiki: str, lang: str, found: dict[str, dict], report: DumpReport) -> list:
    """fetch_log rows of one language: 'ok' for each concept title the dump held, 'missing' for the rest."""
    now = datetime.now(UTC)
    rows = []
    for title, concept in sorted(table.titles(lang).items()):
        page = found.get(normalize_title(title))
        rows.append(
            {
                "wiki": wiki,
                "lang": lang,
                "concept": concept,
                "requested_title": title,
                "status": "ok" if page else "missing",
                "detail": None
                if page
                else ("not in the dump (truncated)" if report.truncated else "not in the dump"),
                "page_id": page["page_id"] if page else None,
                "rev_id": page["rev_id"] if page else None,
                "logged_at": now,
            }
        )
    return rows


def ingest_dumps(
    dumps: str | os.PathLike,
    concepts: str | os.PathLike | ConceptTable,
    *,
    root: str | os.PathLike | None = None,
    name: str = "dump",
    langs: list[str] | None = None,
    concepts_only: bool = True,
    version: str | None = None,
    progress: Callable[[str, DumpReport], None] | None = None,
):
    """Build a `<name>-wiki` dataset version (pages, sections, fetch_log) from dumps, no server needed.

    One shard per language (resumable: a shard already written is skipped when `version` is reused), each
    streamed PAGES_PER_CHUNK pages at a time, so memory does not grow with the dump.
    fetch_log holds 'ok' for each concept page found and 'missing' for each one the dump lacks (a
    truncated dump lacks the pages after the cut). Returns (VersionRef, {lang: DumpReport}).
    """
    from storage.store import VersionWriter, _check_name

    _check_name("dataset", f"{name}-wiki")
    table = concepts if isinstance(concepts, ConceptTable) else read_concepts(concepts)
    paths = find_dumps(dumps, langs)  # langlinks still name every language of the table
    sites = {lang: read_siteinfo(p) for lang, p in paths.items()}

    def url_for(lang: str, title: str) -> str | None:
        return sites[lang].page_url(title) if lang in sites else None

    params = {
        "source": "dump",
        "dumps": {lang: p.name for lang, p in paths.items()},
        "concepts_only": concepts_only,
    }
    writer = VersionWriter(root, f"{name}-wiki", version, params=params)
    reports: dict[str, DumpReport] = {}
    n = len(paths)
    for i, (lang, path) in enumerate(paths.items()):
        report = DumpReport()
        pages = iter_dump(path, concepts=table, concepts_only=concepts_only, report=report, url_for=url_for)
        found: dict[str, dict] = {}  # normalised title -> its first page's ids: the log needs no text
        if writer.has_shard("pages", i, n):
            for page in pages:  # resumed: the shards are there, the log still needs what the dump holds
                _note_ids(found, page)
        else:
            # pages last: its shard, completed after the sections', marks the language done
            with writer.open_shard("pages", i, n) as page_sink, writer.open_shard("sections", i, n) as sink:
                for chunk in _chunks(pages, PAGES_PER_CHUNK):
                    sink.write([r for p in chunk for r in sections_from_page(p)])
                    page_sink.write(chunk)
                    for page in chunk:
                        _note_ids(found, page)
        reports[lang] = report
        if progress:
            progress(lang, report)
        writer.write_shard("fetch_log", i, n, _log_rows(table, sites[lang].dbname, lang, found, report))
    read = sum(r.pages_read for r in reports.values())
    per_lang = ", ".join(f"{lang}: {r.pages_read} read" for lang, r in reports.items())
    why = (
        f"the concept table names none of the {read} page(s) read from {n} dump(s) ({per_lang})"
        if concepts_only
        else f"no article among the {read} page(s) read from {n} dump(s) ({per_lang})"
    )
    require_rows(writer, "pages", "ingest", why)
    return writer.commit(), reports
