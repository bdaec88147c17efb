"""A Prefect server that wikimix starts, waits for, and stops: for the demo, the tests and `wikimix server`.

    server = PrefectServer(home=Path("data/.prefect"), port=4200)
    with server:                      # `prefect server start --host 127.0.0.1 --port 4200`
        os.environ.update(server.client_env())
        ...                           # flows, workers and `prefect deploy` talk to server.api_url

All Prefect state (SQLite database, profiles, local results) lives under `home` (PREFECT_HOME), never in
the user's home directory. SQLite is the embedded default; pass `database_url` (Postgres,
`postgresql+asyncpg://...`) for many concurrent workers, since SQLite locks under concurrent writers.
This module does not import prefect: a process can start the server before it imports prefect, whose
settings are read at import time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from wikimix.errors import WikimixError

DEFAULT_PORT = 4200  # the port Prefect's UI assumes; any other port needs PREFECT_UI_API_URL


class ServerError(WikimixError):
    """The Prefect server did not start or answer."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def prefect_env(home: Path) -> dict[str, str]:
    """Settings every wikimix Prefect process shares: state under `home`, no telemetry, no profile."""
    return {
        "PREFECT_HOME": str(Path(home).resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }


def flush_to_server() -> None:
    """Send this process's buffered logs and events before the server goes away (else exit stalls)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # never started
        APILogWorker.instance().drain()
    EventsWorker.drain_all()


@dataclass
class PrefectServer:
    home: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    database_url: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def log_path(self) -> Path:
        return Path(self.home) / "server.log"

    def client_env(self) -> dict[str, str]:
        """Environment for processes that talk to this server (flows, workers, `prefect deploy`)."""
        return {**prefect_env(self.home), "PREFECT_API_URL": self.api_url}

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 90.0) -> PrefectServer:
        """Start `prefect server start` in its own process group and wait until /api/health answers."""
        if port_in_use(self.port):
            raise ServerError(f"port {self.port} on {self.host} is in use; pick another with --port")
        Path(self.home).mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **prefect_env(self.home)}
        env.pop("PREFECT_API_URL", None)
        # The UI is a browser app: it must be told where the API is when the port is not 4200.
        env["PREFECT_UI_API_URL"] = self.api_url
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", self.host]
        cmd += ["--port", str(self.port)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.process = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                self.stop()
                raise ServerError(f"prefect server exited at start ({tail[0]}); see {self.log_path}")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"prefect server did not answer {self.api_url}/health within {timeout:.0f} s")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server's process group (uvicorn and its services), SIGKILL if it lingers."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
