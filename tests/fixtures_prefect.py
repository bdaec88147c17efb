"""One real Prefect server per test session (`prefect server start`), with all Prefect state in a temp dir.

The environment is set when this plugin is imported, before any test module imports prefect (which reads
its settings at import): PREFECT_HOME is a temp dir, so no test touches ~/.prefect or a user's profile,
and PREFECT_API_URL names the session server's port, so every thread and subprocess (Dask workers,
Prefect workers, `prefect deploy`) talks to that server and none starts an ephemeral one.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.server import PrefectServer, flush_to_server, port_in_use
from tests.conftest import kill_on_timeout

PREFECT_TEST_HOME = Path(tempfile.mkdtemp(prefix="wikimix-prefect-home-"))
atexit.register(shutil.rmtree, PREFECT_TEST_HOME, ignore_errors=True)


def _quiet_port() -> int:
    """A free port below the OS's ephemeral range (32768+), so no outgoing connection takes it meanwhile."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10000, 20000)
        if not port_in_use(port):
            return port
    raise RuntimeError("no free port in 10000..19999")


SERVER = PrefectServer(home=PREFECT_TEST_HOME / "server", port=_quiet_port())
for _name in ("PREFECT_PROFILE", "PREFECT_API_KEY"):
    os.environ.pop(_name, None)
os.environ.update(SERVER.client_env())


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    """The started session server."""
    SERVER.start(timeout=180)
    kill_on_timeout(lambda: [SERVER.process.pid if SERVER.process else None])
    try:
        yield SERVER
    finally:
        flush_to_server()
        SERVER.stop()


@pytest.fixture
def prefect_client(prefect_server: PrefectServer):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client
