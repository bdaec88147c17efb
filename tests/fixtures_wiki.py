"""A real local MediaWiki family, brought up once per test session and torn down at its end.

Built from the shared dumps + concepts.tsv when ../shared is present, else from the repo's sample corpus
(samples/wiki). Tests that need it skip with the reason when PHP/MediaWiki is not installed (install with
`bash scripts/system-deps.sh`; CI's .ci/run does).

Extra pages imported into the first wiki exercise the crawler's error paths: a redirect to a concept
page, a disambiguation page.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, kill_on_timeout, shared_path

SAMPLE_DIR = REPO / "samples" / "wiki"
REDIRECT_TITLE = "Wikimix redirect test"
DISAMBIGUATION_TITLE = "Wikimix disambiguation test"


@dataclass
class WikiSource:
    """Where a family's dumps and concept table come from."""

    name: str  # 'shared' or 'sample'
    dumps: Path
    concepts: Path


def wiki_sources() -> list[WikiSource]:
    """The available corpora: shared dumps first, then the sample corpus."""
    found = []
    shared = shared_path() / "corpus" / "wikipedia"
    if (shared / "concepts.tsv").is_file():
        found.append(WikiSource("shared", shared, shared / "concepts.tsv"))
    if (SAMPLE_DIR / "concepts.tsv").is_file() and any(SAMPLE_DIR.glob("*wiki-*.xml*")):
        found.append(WikiSource("sample", SAMPLE_DIR, SAMPLE_DIR / "concepts.tsv"))
    return found


def free_port_base(n: int) -> int:
    """A run of n free ports (random start, so parallel sessions rarely collide)."""
    from wikimix.localwiki.family import port_is_free

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        if all(port_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no run of free ports found")


@pytest.fixture(scope="session")
def wiki_source() -> WikiSource:
    sources = wiki_sources()
    if not sources:
        pytest.skip("no wiki corpus: neither ../shared/corpus/wikipedia nor samples/wiki")
    return sources[0]


@pytest.fixture(scope="session")
def wiki_family(wiki_source: WikiSource, tmp_path_factory: pytest.TempPathFactory):
    """The running family: `.wikis[lang].api_url`, `.api_urls()`; `.home` is the first language."""
    from pipeline.concepts import read_concepts
    from wikimix.localwiki import LocalWikiError, build_family, check_installed

    try:
        check_installed()
    except LocalWikiError as exc:
        pytest.skip(str(exc))
    table = read_concepts(wiki_source.concepts)
    langs = table.langs()
    home = langs[0]
    target = next(iter(table.titles(home)))
    extra = {
        home: [
            {"title": REDIRECT_TITLE, "wikitext": f"#REDIRECT [[{target}]]"},
            {
                "title": DISAMBIGUATION_TITLE,
                "wikitext": "'''Wikimix''' may refer to:\n* [[" + target + "]]\n\n{{disambig}}",
            },
        ]
    }
    directory = tmp_path_factory.mktemp("wikifamily")
    family = build_family(
        wiki_source.dumps,
        table,
        directory,
        port_base=free_port_base(len(langs)),
        extra_pages=extra,
    )
    family.home = home
    family.redirect_target = target
    family.table = table
    kill_on_timeout(lambda: [wiki.pid for wiki in family.wikis.values()])
    try:
        yield family
    finally:
        family.stop()
