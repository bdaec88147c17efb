"""A family of real local MediaWiki wikis, one SQLite wiki per language, served on 127.0.0.1 by `php -S`.

    wikimix wiki up --dumps ../shared/corpus/wikipedia --concepts ../shared/corpus/wikipedia/concepts.tsv
    wikimix wiki down

Debian's mediawiki 1.39 unpacked by scripts/system-deps.sh (default /opt/wikimix-mediawiki, or
$WIKIMIX_MEDIAWIKI) runs without Apache. Per wiki: `maintenance/install.php --dbtype sqlite` writes the
database and install/LocalSettings.php; wikimix's LocalSettings.php (rendered from the template next to
this file) includes it and adds the overrides; MW_CONFIG_FILE selects it for the server and every
maintenance script. Interwiki rows for every language of the family go in BEFORE the import, so the
`[[xx:Title]]` lines added from the concept table (modern dumps carry none) are interlanguage links.

Import: importDump.php parses every page to update its link tables, ~150 ms of CPU per real article;
for a family that is most of the build time. So by default pages are imported with --no-updates and
their langlinks rows are written straight from the `[[xx:Title]]` lines they carry, the rows MediaWiki's
own LinksUpdate writes (tests check the two agree: `parse_links=True` takes MediaWiki's path).
`php -S` forks PHP_CLI_SERVER_WORKERS children, so each server is started in
its own session and stopped by process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.concepts import ConceptTable, read_concepts
from pipeline.dump import find_dumps, iter_dump, read_siteinfo
from wikimix.errors import WikimixError
from wikimix.guards import check_lang, check_wiki_id, mark_created, remove_created_dir

TEMPLATE = Path(__file__).with_name("LocalSettings.php")
STATE_FILE = "family.json"
DEFAULT_PORT_BASE = 8700


class LocalWikiError(WikimixError):
    """The local MediaWiki family cannot be built, started or stopped."""


def mediawiki_dir() -> Path:
    return Path(os.environ.get("WIKIMIX_MEDIAWIKI", "/opt/wikimix-mediawiki"))


def default_family_dir() -> Path:
    """$WIKIMIX_WIKI_DIR, else <data root>/.wikifamily."""
    from storage.store import data_root

    return Path(os.environ.get("WIKIMIX_WIKI_DIR") or Path(data_root()) / ".wikifamily")


def check_installed() -> Path:
    """The MediaWiki tree and php, or a one-line error saying how to install them."""
    mw = mediawiki_dir()
    if shutil.which("php") is None or not (mw / "maintenance" / "install.php").is_file():
        raise LocalWikiError(
            f"MediaWiki/PHP not installed (need php on PATH and {mw}); run: bash scripts/system-deps.sh"
        )
    return mw


def _php_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, dead but unreaped by another parent, don't)."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalWiki:
    """One wiki of the family: its language, database name, port and directory."""

    lang: str
    dbname: str
    port: int
    dir: Path
    pid: int | None = None
    pages: int = 0

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.server}/api.php"

    @property
    def config_file(self) -> Path:
        return self.dir / "LocalSettings.php"

    def env(self) -> dict[str, str]:
        return {**os.environ, "MW_CONFIG_FILE": str(self.config_file), "PHP_CLI_SERVER_WORKERS": "2"}

    def php(self, script: str, *args: str, stdin: bytes | None = None, timeout: float = 300) -> str:
        """Run a maintenance script of this wiki; a one-line error with its last output line on failure."""
        cmd = ["php", str(mediawiki_dir() / "maintenance" / script), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, env=self.env(), timeout=timeout)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if proc.returncode != 0:
            last = [line for line in out.splitlines() if line.strip()][-1:] or ["(no output)"]
            raise LocalWikiError(f"{self.dbname}: {script} failed (exit {proc.returncode}): {last[0][:300]}")
        return out

    # --- serving ---------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Serve the wiki with `php -S` in its own session; returns once the API answers."""
        proc = self.spawn()
        if proc is not None:
            self.wait_up(timeout, proc)

    def spawn(self) -> subprocess.Popen | None:
        """Start `php -S` without waiting for it (None when the wiki already answers)."""
        if self.is_up():
            return None
        if not port_is_free(self.port):
            raise LocalWikiError(f"port {self.port} is in use; choose another --port-base")
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the server keeps it open
        proc = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(mediawiki_dir())],
            cwd=mediawiki_dir(),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: stop() kills the forked workers too
        )
        log.close()
        self.pid = proc.pid
        return proc

    def wait_up(self, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_up():
                return
            if proc is not None and proc.poll() is not None:
                raise LocalWikiError(
                    f"{self.dbname}: php -S exited ({proc.returncode}); see {self.dir / 'server.log'}"
                )
            time.sleep(0.1)
        raise LocalWikiError(f"{self.dbname}: API at {self.api_url} not answering after {timeout:.0f} s")

    def is_up(self) -> bool:
        url = f"{self.api_url}?action=query&meta=siteinfo&format=json"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return resp.status == 200 and b'"general"' in resp.read()
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def stop(self, timeout: float = 10) -> None:
        """Stop the server and its workers (by process group)."""
        self.signal_stop()
        self.wait_stopped(timeout)

    def signal_stop(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float = 10) -> None:
        """Wait for the process group to go (SIGKILL after `timeout`), reaping our own child."""
        if self.pid is None:
            return
        killed = False
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
            if not _group_alive(self.pid):
                break
            if time.monotonic() > deadline:
                if killed:
                    raise LocalWikiError(f"{self.dbname}: server group {self.pid} survives SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                killed, deadline = True, time.monotonic() + timeout
            time.sleep(0.05)
        self.pid = None

    # --- content ---------------------------------------------------------------------------------
    def import_pages(self, pages: Iterable[dict], parse_links: bool = False) -> int:
        """Import pages ({title, wikitext, langlinks?, timestamp?}) with importDump.php; returns how many."""
        pages = list(pages)
        xml, n = pages_xml(pages, self.lang)
        if n:
            self.php(*_import_args(parse_links), stdin=xml)
            if not parse_links:
                self.write_langlinks(pages)
            self.pages += n
        return n

    def write_langlinks(self, pages: Iterable[dict]) -> int:
        """Langlinks rows of imported pages, as LinksUpdate writes them (ll_from, ll_lang, ll_title)."""
        import sqlite3

        db = sqlite3.connect(self.dir / f"{self.dbname}.sqlite")
        n = 0
        try:
            with db:
                for page in pages:
                    links = {(ll["lang"], ll["title"]) for ll in page.get("langlinks") or []}
                    if not links:
                        continue
                    key = page["title"].replace(" ", "_")
                    row = db.execute(
                        "SELECT page_id FROM page WHERE page_namespace = 0 AND page_title = ?", (key,)
                    ).fetchone()
                    if row is None:
                        raise LocalWikiError(f"{self.dbname}: imported page {page['title']!r} not found")
                    db.execute("DELETE FROM langlinks WHERE ll_from = ?", (row[0],))
                    db.executemany(
                        "INSERT INTO langlinks (ll_from, ll_lang, ll_title) VALUES (?, ?, ?)",
                        [(row[0], lang, title) for lang, title in sorted(links)],
                    )
                    n += len(links)
        finally:
            db.close()
        return n


def _import_args(parse_links: bool) -> list[str]:
    return ["importDump.php", "--quiet"] + ([] if parse_links else ["--no-updates"])


def pages_xml(pages: Iterable[dict], lang: str) -> tuple[bytes, int]:
    """MediaWiki export XML (schema 0.10) of the pages, with their langlinks as `[[xx:Title]]` lines."""
    out = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" '
        f'xml:lang="{escape(lang)}">'
    ]
    n = 0
    for page in pages:
        text = page["wikitext"]
        links = page.get("langlinks") or []
        if links:
            text = text.rstrip() + "\n\n" + "\n".join(f"[[{ll['lang']}:{ll['title']}]]" for ll in links)
        ts = page.get("timestamp") or datetime.now(UTC)
        out.append(
            f"<page><title>{escape(page['title'])}</title><ns>0</ns><revision>"
            f"<timestamp>{ts:%Y-%m-%dT%H:%M:%SZ}</timestamp>"
            "<contributor><username>Wikimix import</username></contributor>"
            "<model>wikitext</model><format>text/x-wiki</format>"
            f'<text xml:space="preserve">{escape(text)}</text></revision></page>'
        )
        n += 1
    out.append("</mediawiki>")
    return "\n".join(out).encode("utf-8"), n


@dataclass
class Family:
    """The wikis of one family and where their state lives (family.json)."""

    dir: Path
    wikis: dict[str, LocalWiki] = field(default_factory=dict)

    def api_urls(self) -> dict[str, str]:
        return {lang: w.api_url for lang, w in self.wikis.items()}

    def save(self) -> None:
        state = {"wikis": [{**asdict(w), "dir": str(w.dir)} for w in self.wikis.values()]}
        tmp = self.dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.dir / STATE_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Family:
        directory = Path(directory)
        try:
            state = json.loads((directory / STATE_FILE).read_text())
        except FileNotFoundError:
            raise LocalWikiError(f"no wiki family at {directory} (run `wikimix wiki up` first)") from None
        except (json.JSONDecodeError, OSError) as exc:
            raise LocalWikiError(f"unreadable family state {directory / STATE_FILE}: {exc}") from None
        wikis = {w["lang"]: LocalWiki(**{**w, "dir": Path(w["dir"])}) for w in state["wikis"]}
        return cls(directory, wikis)

    def start(self, timeout: float = 60) -> None:
        """Start every server at once, then wait for each API."""
        try:
            procs = [(wiki, wiki.spawn()) for wiki in self.wikis.values()]
            for wiki, proc in procs:
                if proc is not None:
                    wiki.wait_up(timeout, proc)
        except BaseException:
            self.stop()
            raise
        self.save()

    def stop(self) -> None:
        """Stop every server at once (SIGTERM to each process group, then wait for all)."""
        for wiki in self.wikis.values():
            wiki.signal_stop()
        for wiki in self.wikis.values():
            wiki.wait_stopped()
        self.save()


def _run_parallel(jobs: list[tuple[LocalWiki, list[str], bytes | None]], timeout: float = 600) -> None:
    """Run one maintenance command per wiki at once (PHP start-up dominates small imports)."""
    procs = []
    for wiki, cmd, stdin in jobs:
        proc = subprocess.Popen(
            ["php", str(mediawiki_dir() / "maintenance" / cmd[0]), *cmd[1:]],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=wiki.env(),
            cwd=wiki.dir,
        )
        procs.append((wiki, cmd, proc, stdin))
    errors = []
    for wiki, cmd, proc, stdin in procs:
        out, _ = proc.communicate(stdin, timeout=timeout)
        if proc.returncode != 0:
            last = [line for line in out.decode("utf-8", "replace").splitlines() if line.strip()][-1:]
            errors.append(f"{wiki.dbname}: {cmd[0]} failed: {(last or ['(no output)'])[0][:300]}")
    if errors:
        raise LocalWikiError("; ".join(errors))


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read (0600 from the start, not chmod-ed after being readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # O_CREAT keeps an existing file's mode


PASSFILE = ".admin-pass"


def _install(wiki: LocalWiki) -> list[str]:
    """install.php's arguments. The admin password goes in a 0600 file (--passfile), never on the
    command line, where every user sees it in the process list; build_family removes the file after."""
    (wiki.dir / "install").mkdir(parents=True, mode=0o700)
    _write_private(wiki.dir / PASSFILE, f"Wikimix-{secrets.token_hex(16)}\n")
    return [
        "install.php",
        "--dbtype=sqlite",
        f"--dbpath={wiki.dir}",
        f"--dbname={wiki.dbname}",
        f"--server={wiki.server}",
        "--scriptpath=",
        f"--lang={wiki.lang}",
        f"--passfile={wiki.dir / PASSFILE}",
        f"--confpath={wiki.dir / 'install'}",
        "--skins=",
        f"wikimix {wiki.lang}",
        "WikimixAdmin",
    ]


def _protect_secrets(wiki: LocalWiki) -> None:
    """install.php writes $wgSecretKey/$wgUpgradeKey (LocalSettings) and the admin's password hash
    (the SQLite files) with the umask's mode: make them owner-only (the directory is 0700 as well)."""
    for path in [wiki.dir / "install" / "LocalSettings.php", *wiki.dir.glob("*.sqlite")]:
        if path.is_file():
            os.chmod(path, 0o600)


def _render_settings(wiki: LocalWiki, sitename: str) -> None:
    text = TEMPLATE.read_text()
    for key, value in {"SITENAME": sitename, "SERVER": wiki.server, "LANG": wiki.lang}.items():
        text = text.replace("{{" + key + "}}", _php_str(value))
    wiki.config_file.write_text(text)


def _add_interwikis(wiki: LocalWiki, family: dict[str, LocalWiki]) -> None:
    """One interwiki row per language of the family (url and api of that wiki), before any import."""
    import sqlite3

    db = sqlite3.connect(wiki.dir / f"{wiki.dbname}.sqlite")
    try:
        with db:
            for other in family.values():
                db.execute(
                    "INSERT OR REPLACE INTO interwiki (iw_prefix, iw_url, iw_api, iw_wikiid, iw_local, iw_trans)"
                    " VALUES (?, ?, ?, ?, 1, 0)",
                    (other.lang, f"{other.server}/index.php?title=$1", other.api_url, other.dbname),
                )
    finally:
        db.close()


def build_family(
    dumps: str | os.PathLike,
    concepts: str | os.PathLike | ConceptTable,
    directory: str | os.PathLike | None = None,
    *,
    langs: list[str] | None = None,
    port_base: int = DEFAULT_PORT_BASE,
    all_pages: bool = False,
    extra_pages: dict[str, list[dict]] | None = None,
    parse_links: bool = False,
    start: bool = True,
) -> Family:
    """Build (from scratch) one wiki per dump language and, by default, serve them.

    Imports the concept table's pages (all pages of each dump with all_pages=True), each with
    `[[xx:Title]]` lines for its other languages; extra_pages {lang: [{title, wikitext}]} are imported
    too (tests add redirects and the like). A running family in the same directory is stopped first.
    """
    directory = Path(directory or default_family_dir()).resolve()
    table = concepts if isinstance(concepts, ConceptTable) else read_concepts(concepts)
    paths = find_dumps(dumps, langs)
    sites = {lang: read_siteinfo(p) for lang, p in paths.items()}
    for lang, path in paths.items():  # every name checked before anything is stopped, deleted or made
        check_lang(lang, f"dump {path.name}")
        check_wiki_id(sites[lang].dbname, f"<dbname> of dump {path.name}")
    check_installed()
    table = table.subset(paths)
    previous_dirs: list[Path] = []  # wiki directories of a family built here before (wikimix's own)
    if (directory / STATE_FILE).exists():
        previous = Family.load(directory)
        previous.stop()
        previous_dirs = [w.dir for w in previous.wikis.values()]
    busy = [port_base + i for i in range(len(paths)) if not port_is_free(port_base + i)]
    if busy:
        raise LocalWikiError(f"port(s) {', '.join(map(str, busy))} in use; choose another --port-base")
    directory.mkdir(parents=True, exist_ok=True)
    family = Family(directory)
    for i, lang in enumerate(paths):
        wiki_dir = directory / lang
        if wiki_dir.exists() or wiki_dir.is_symlink():
            remove_created_dir(wiki_dir, directory, listed=previous_dirs)
        wiki_dir.mkdir(mode=0o700)  # holds the secret key and the password hash
        mark_created(wiki_dir, lang=lang)
        family.wikis[lang] = LocalWiki(lang, sites[lang].dbname, port_base + i, wiki_dir)
    family.save()

    try:
        _run_parallel([(w, _install(w), None) for w in family.wikis.values()])
    finally:
        for wiki in family.wikis.values():
            (wiki.dir / PASSFILE).unlink(missing_ok=True)
            _protect_secrets(wiki)
    jobs, imported = [], {}
    for lang, wiki in family.wikis.items():
        _render_settings(wiki, sites[lang].sitename or f"wikimix {lang}")
        _add_interwikis(wiki, family.wikis)
        pages = list(iter_dump(paths[lang], concepts=table, concepts_only=not all_pages))
        pages += (extra_pages or {}).get(lang, [])
        xml, wiki.pages = pages_xml(pages, lang)
        jobs.append((wiki, _import_args(parse_links), xml))
        imported[lang] = pages
    _run_parallel(jobs)
    if not parse_links:
        for lang, wiki in family.wikis.items():
            wiki.write_langlinks(imported[lang])
    family.save()
    if start:
        family.start()
    return family


def stop_family(directory: str | os.PathLike | None = None) -> Family:
    family = Family.load(directory or default_family_dir())
    family.stop()
    return family
