"""Real local MediaWiki family for tests, demos and benchmarks (see family.py)."""

from wikimix.localwiki.family import (
    Family,
    LocalWiki,
    LocalWikiError,
    build_family,
    check_installed,
    default_family_dir,
    stop_family,
)

__all__ = [
    "Family",
    "LocalWiki",
    "LocalWikiError",
    "build_family",
    "check_installed",
    "default_family_dir",
    "stop_family",
]
