"""Shared fixtures. Area-specific fixtures live in tests/fixtures_<area>.py, listed in pytest_plugins."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import pytest_timeout

REPO = Path(__file__).resolve().parent.parent
pytest_plugins: list[str] = ["tests.fixtures_prefect", "tests.fixtures_training", "tests.fixtures_wiki"]
SERVER_GROUPS: list[Callable[[], Iterable[int | None]]] = []


def kill_on_timeout(process_groups: Callable[[], Iterable[int | None]]) -> None:
    """Register a session server's process groups, read when a test times out. The timeout ends pytest with
    os._exit (no fixture teardown), and servers in their own sessions would outlive it."""
    SERVER_GROUPS.append(process_groups)


def kill_server_groups() -> None:
    for groups in SERVER_GROUPS:
        for pgid in groups():
            if pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: pytest_timeout.Settings) -> bool | None:
    """pytest-timeout's thread method, with the registered servers killed before it ends the process."""
    if settings.method != "thread":
        return None

    def expire() -> None:
        if settings.disable_debugger_detection or not pytest_timeout.is_debugging():
            kill_server_groups()
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(settings.timeout, expire)
    timer.name = f"timeout {item.nodeid}"

    def cancel() -> None:
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel
    timer.start()
    return True


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny models: on a shared 2-core machine a second thread costs more
    than it gives. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
