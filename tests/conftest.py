"""Shared fixtures. Area-specific fixtures live in tests/fixtures_<area>.py, listed in pytest_plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins: list[str] = ["tests.fixtures_prefect", "tests.fixtures_training", "tests.fixtures_wiki"]


def shared_path() -> Path:
    return Path(os.environ.get("WIKIMIX_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (or $WIKIMIX_SHARED); tests that need it skip with the reason when it is absent."""
    path = shared_path()
    if not (path / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {path} (set WIKIMIX_SHARED)")
    return path


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root, also exported as WIKIMIX_DATA for code that reads the environment."""
    root = tmp_path / "data"
    monkeypatch.setenv("WIKIMIX_DATA", str(root))
    return root
