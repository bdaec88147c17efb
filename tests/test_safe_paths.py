"""Nothing read from a dump, a server or the command line may become a path unchecked, and wikimix deletes
only what it created (issue 15, item 2); the local family's secrets are owner-only and the admin password
never reaches a command line (item 6)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.concepts import Concept, ConceptTable
from tests.conftest import REPO
from tests.fixtures_wiki import SAMPLE_DIR, free_port_base
from wikimix.errors import WikimixError
from wikimix.guards import CREATED_MARKER, UnsafePathError, check_lang, check_wiki_id

REAL_LANGS = ["en", "als", "simple", "zh-classical", "be-tarask", "be-x-old", "zh-min-nan", "roa-rup",
              "nds-nl", "bat-smg", "map-bms", "cbk-zam", "fiu-vro", "zh-yue", "hy", "mr", "uk", "vi"]  # fmt: skip
BAD_LANGS = ["..", ".", "", "../x", "en/..", "en/de", "EN", "en ", " en", "-en", "en-", "en--x", "e",
             "en\x00", "en\n", "en\\..", "a" * 9, "en-" + "x" * 13, "~", "en.", "é"]  # fmt: skip
REAL_WIKI_IDS = ["enwiki", "be_x_oldwiki", "zh_classicalwiki", "simplewiki", "my_wiki", "wikidb-mw_"]
BAD_WIKI_IDS = ["../x", "..", ".", "", "a/b", ".hidden", "en wiki", "x-y-z", "_x", "enwiki\n", "x" * 65]


def _dump(directory: Path, name: str, lang: str, dbname: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" '
        f'xml:lang="{lang}"><siteinfo><sitename>Evil</sitename><dbname>{dbname}</dbname>'
        "<base>http://evil.invalid/wiki/Main</base></siteinfo>"
        "<page><title>Kyiv</title><ns>0</ns><id>1</id><revision><id>1</id>"
        "<timestamp>2023-01-01T00:00:00Z</timestamp>"
        '<text xml:space="preserve">Kyiv is a city.</text></revision></page></mediawiki>'
    )
    (directory / "concepts.tsv").write_text(
        "concept\tqid\tlang\ttitle\tpage_id\trev_id\tchars\nKyiv\t\ten\tKyiv\t\t\t\n"
    )
    return path


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def mediawiki_installed() -> None:
    from wikimix.localwiki import LocalWikiError, check_installed

    try:
        check_installed()
    except LocalWikiError as exc:
        pytest.skip(str(exc))


# --- the validators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", REAL_LANGS)
def test_language_codes_real_wikis_use_pass(lang):
    assert check_lang(lang) == lang


@pytest.mark.parametrize("lang", BAD_LANGS)
def test_path_like_or_odd_language_codes_are_refused(lang):
    with pytest.raises(UnsafePathError, match="bad language code"):
        check_lang(lang, "test")


@pytest.mark.parametrize("wiki_id", REAL_WIKI_IDS)
def test_wiki_ids_real_wikis_use_pass(wiki_id):
    assert check_wiki_id(wiki_id) == wiki_id


@pytest.mark.parametrize("wiki_id", BAD_WIKI_IDS)
def test_path_like_wiki_ids_are_refused(wiki_id):
    with pytest.raises(UnsafePathError, match="bad wiki id"):
        check_wiki_id(wiki_id, "test")


def test_every_dump_of_the_repo_and_shared_corpus_passes():
    from pipeline.dump import find_dumps, read_siteinfo
    from tests.fixtures_wiki import wiki_sources

    sources = wiki_sources()
    assert sources, "no corpus to check"
    for source in sources:
        for lang, path in find_dumps(source.dumps).items():
            assert check_lang(lang) and check_wiki_id(read_siteinfo(path).dbname)


# --- dumps that name a path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "dbname", "message"),
    [("..", "enwiki", "bad language code '..'"), ("en", "../x", "bad wiki id '../x'")],
)
def test_a_hostile_dump_is_refused_by_wiki_up_and_the_data_root_survives(tmp_path, lang, dbname, message):
    """The bug: `xml:lang=".."` made `wiki up` remove <family dir>/.., with the default --dir the data root."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("the user's data")
    dumps = tmp_path / "dumps"
    _dump(dumps, "enwiki-evil.xml", lang, dbname)
    env = {**os.environ, "WIKIMIX_DATA": str(data)}
    env.pop("WIKIMIX_WIKI_DIR", None)
    before = _tree(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "wikimix.cli", "wiki", "up", "--dumps", str(dumps),
         "--concepts", str(dumps / "concepts.tsv"), "--port-base", str(free_port_base(1))],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert "enwiki-evil.xml" in lines[0]  # names the dump it came from
    assert _tree(tmp_path) == before  # nothing deleted, nothing created (no family dir, no x.sqlite)
    assert not (data / ".wikifamily").exists()


@pytest.mark.parametrize(("lang", "dbname"), [("..", "enwiki"), ("en", "../x"), ("en/../..", "enwiki")])
def test_a_hostile_dump_is_refused_by_build_family_and_ingest(tmp_path, lang, dbname):
    from pipeline.dump import ingest_dumps
    from wikimix.localwiki import build_family

    family_dir = tmp_path / "root" / "family"
    family_dir.mkdir(parents=True)
    (tmp_path / "root" / "sentinel").write_text("next to the family directory")
    dumps = tmp_path / "dumps"
    _dump(dumps, "enwiki-evil.xml", lang, dbname)
    before = _tree(tmp_path)
    with pytest.raises(WikimixError, match="bad (language code|wiki id)"):
        build_family(dumps, dumps / "concepts.tsv", family_dir, port_base=free_port_base(1), start=False)
    with pytest.raises(WikimixError, match="bad (language code|wiki id)"):
        ingest_dumps(dumps, dumps / "concepts.tsv", root=tmp_path / "root" / "data", name="evil")
    assert _tree(tmp_path) == before


@pytest.mark.mediawiki
def test_a_directory_wikimix_did_not_create_is_never_deleted(mediawiki_installed, tmp_path):
    from pipeline.concepts import read_concepts
    from wikimix.localwiki import build_family

    table = read_concepts(SAMPLE_DIR / "concepts.tsv")
    family_dir = tmp_path / "family"
    (family_dir / "en").mkdir(parents=True)
    (family_dir / "en" / "notes.txt").write_text("someone's own files, in a directory named like a language")
    with pytest.raises(UnsafePathError, match="wikimix did not create it"):
        build_family(SAMPLE_DIR, table, family_dir, langs=["en"], port_base=free_port_base(1), start=False)
    assert (family_dir / "en" / "notes.txt").read_text().startswith("someone's own files")

    # a symlink named like a language, pointing out of the family directory: refused, target untouched
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("elsewhere")
    (outside / CREATED_MARKER).write_text("{}")  # even a marker does not make a link wikimix's
    other = tmp_path / "family2"
    other.mkdir()
    (other / "en").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="refusing to replace"):
        build_family(SAMPLE_DIR, table, other, langs=["en"], port_base=free_port_base(1), start=False)
    assert (outside / "precious.txt").read_text() == "elsewhere" and (other / "en").is_symlink()


@pytest.mark.mediawiki
def test_rebuild_replaces_only_its_own_wiki_and_keeps_secrets_private(mediawiki_installed, tmp_path):
    from pipeline.concepts import read_concepts
    from wikimix.localwiki import build_family

    table = read_concepts(SAMPLE_DIR / "concepts.tsv")
    family_dir = tmp_path / "family"
    family_dir.mkdir()
    (family_dir / "notes.txt").write_text("the user's file in the family directory")
    family = build_family(
        SAMPLE_DIR, table, family_dir, langs=["en"], port_base=free_port_base(1), start=False
    )
    wiki = family.wikis["en"]
    _assert_private(wiki.dir)
    (wiki.dir / "old-run.txt").write_text("from the first build")

    # a family built before the marker existed: its own family.json still vouches for the directory
    (wiki.dir / CREATED_MARKER).unlink()
    family = build_family(
        SAMPLE_DIR, table, family_dir, langs=["en"], port_base=free_port_base(1), start=False
    )
    wiki = family.wikis["en"]
    assert not (wiki.dir / "old-run.txt").exists() and (wiki.dir / CREATED_MARKER).is_file()
    assert (family_dir / "notes.txt").read_text().startswith("the user's file")
    _assert_private(wiki.dir)


def _assert_private(wiki_dir: Path) -> None:
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    settings = wiki_dir / "install" / "LocalSettings.php"
    assert "$wgSecretKey" in settings.read_text() and mode(settings) == 0o600
    databases = list(wiki_dir.glob("*.sqlite"))
    assert databases and all(mode(p) == 0o600 for p in databases)
    assert mode(wiki_dir) == 0o700
    assert not list(wiki_dir.glob(".admin-pass*"))  # the password file is gone after the install
    # install.php read the password from --passfile: the admin exists with a real password hash
    db = sqlite3.connect(next(p for p in databases if p.stem == wiki_dir.name + "wiki"))
    try:
        (hashed,) = db.execute("SELECT user_password FROM user WHERE user_name = 'WikimixAdmin'").fetchone()
    finally:
        db.close()
    hashed = hashed.decode() if isinstance(hashed, bytes) else hashed
    assert hashed.startswith(":pbkdf2:") and len(hashed) > 40


def test_the_admin_password_is_never_an_argument(tmp_path):
    from wikimix.localwiki import LocalWiki
    from wikimix.localwiki.family import PASSFILE, _install

    wiki = LocalWiki("en", "enwiki", 8700, tmp_path / "en")
    wiki.dir.mkdir(mode=0o700)
    args = _install(wiki)
    passfile = wiki.dir / PASSFILE
    password = passfile.read_text().strip()
    assert len(password) >= 32 and stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert f"--passfile={passfile}" in args
    assert not any(a.startswith("--pass=") for a in args)
    assert not any(password in a for a in args)


# --- servers that name a path -------------------------------------------------------------------------


class _Siteinfo(BaseHTTPRequestHandler):
    """A wiki whose siteinfo says what the test wants (a hostile or broken server, not a stand-in)."""

    general: dict = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"batchcomplete": True, "query": {"general": self.general, "interwikimap": []}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile_wiki():
    """Start a server answering every API call with the given siteinfo; yields a function general -> URL."""
    servers = []

    def serve(general: dict) -> str:
        handler = type("Handler", (_Siteinfo,), {"general": general})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/w/api.php"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_server_naming_a_path_as_its_wiki_id_is_refused(hostile_wiki, tmp_path):
    from pipeline.fetch import crawl
    from pipeline.mwapi import FetchConfig, FetchError

    (tmp_path / "sentinel").write_text("outside the data root")
    url = hostile_wiki({"wikiid": "../../x", "lang": "en"})
    table = ConceptTable([Concept("Kyiv", "en", "Kyiv")])
    config = FetchConfig(max_retries=0)
    with pytest.raises(WikimixError, match=r"bad wiki id '\.\./\.\./x'"):
        crawl({"en": url}, concepts=table, root=str(tmp_path / "data"), name="h", config=config)
    with pytest.raises(FetchError, match=r"home wiki unusable: bad wiki id '\.\./\.\./x'"):
        crawl(url, titles=["Kyiv"], root=str(tmp_path / "data"), name="h", config=config)
    lang_url = hostile_wiki({"wikiid": "enwiki", "lang": ".."})
    with pytest.raises(UnsafePathError, match=r"bad language code '\.\.' from siteinfo"):
        crawl(lang_url, titles=["Kyiv"], root=str(tmp_path / "data"), name="h", config=config)
    # no wikiid at all: Wikimedia's dbname convention, a plain name (the wiki has no such page)
    plain_url = hostile_wiki({"lang": "zh-min-nan"})
    with pytest.raises(WikimixError, match="missing 1.*no page 'Kyiv' on zh_min_nanwiki"):
        crawl(plain_url, titles=["Kyiv"], root=str(tmp_path / "data"), name="h", config=config)
    outside = sorted(p.name for p in tmp_path.iterdir())
    assert outside == ["data", "sentinel"] and not list(tmp_path.rglob("x*"))


def test_staging_refuses_a_path_as_wiki_id(tmp_path):
    from pipeline.fetch_resume import Staging
    from storage.store import VersionWriter

    writer = VersionWriter(str(tmp_path / "data"), "s-wiki")
    with pytest.raises(UnsafePathError, match="bad wiki id"):
        Staging(writer).write([{"wiki": "../../../x", "rev_id": 1, "lang": "en", "page_id": 1, "title": "T"}])
    assert not list(tmp_path.rglob("x-*"))


def test_langs_option_takes_only_language_codes(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "wikimix.cli", "ingest", "--dumps", str(SAMPLE_DIR),
         "--concepts", str(SAMPLE_DIR / "concepts.tsv"), "--langs", "en,../x", "--root", str(tmp_path / "d")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2 and out.stderr.strip() == (
        "error: bad language code '../x' from --langs: expected a lowercase MediaWiki code such as en, als, "
        "zh-classical or be-tarask"
    )
    assert not (tmp_path / "d").exists()


def test_dataset_names_are_checked_before_any_request_or_read(tmp_path):
    from pipeline.dump import ingest_dumps
    from pipeline.fetch import crawl
    from storage.store import StorageError

    dead = f"http://127.0.0.1:{free_port_base(1)}/api.php"
    with pytest.raises(StorageError, match="bad dataset name '../evil-wiki'"):  # not 'home wiki unusable'
        crawl(dead, titles=["Kyiv"], root=str(tmp_path / "data"), name="../evil")
    with pytest.raises(StorageError, match="bad dataset name '../evil-wiki'"):
        ingest_dumps(tmp_path / "no-dumps", tmp_path / "no.tsv", root=str(tmp_path / "data"), name="../evil")
    assert not list(tmp_path.iterdir())
