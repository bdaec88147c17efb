"""CLI verbs that run wikimix on Prefect: the demo, the server, deployments and a worker.

    wikimix demo                 # sample wiki family + Prefect server + end-to-end (smoke); prints the URL
    wikimix server               # the Prefect server on the state under <data>/.prefect (UI at :4200)
    wikimix deploy               # create the `wikimix` process pool, `prefect deploy --all`
    wikimix worker               # a process worker for that pool, running flows from this checkout
    wikimix serve                # or instead of deploy + worker: serve every deployment from one process

Prefect state (SQLite database, settings, results of runs outside the data root) lives in
<data root>/.prefect, never in the home directory. Prefect is imported only inside the commands, after
PREFECT_HOME is set, since it reads its settings at import time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from wikimix.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "wiki"
POOL = "wikimix"

DataOpt = Annotated[str | None, typer.Option("--data", help="data root (default $WIKIMIX_DATA or ./data)")]
PortOpt = Annotated[int, typer.Option(help="Prefect server port (4200: the UI's default)")]


def _prefect_home(data: str | None) -> Path:
    """Point this process (and its children) at <data root>/.prefect, before prefect is imported."""
    from flows.server import prefect_env
    from storage.store import data_root

    root = data_root(data)
    if "://" in root:
        raise ConfigError("the demo and the server need a local data root")
    os.environ["WIKIMIX_DATA"] = str(Path(root).resolve())
    home = Path(root).resolve() / ".prefect"
    os.environ.update(prefect_env(home))
    return home


def _exit_on_sigterm() -> None:
    """`kill` (SIGTERM) unwinds like Ctrl-C, so the servers this command started are stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _pick_port(port: int) -> int:
    from flows.server import free_port, port_in_use

    return free_port() if port_in_use(port) else port


def demo(
    data: DataOpt = None,
    port: PortOpt = 4200,
    source: Annotated[
        str, typer.Option(help="'wiki': the sample as a local MediaWiki family; 'dumps'")
    ] = "wiki",
    rankers: Annotated[str, typer.Option(help="significance rankers, comma-separated")] = "loo",
    serve: Annotated[bool, typer.Option(help="keep the server up after the run until Ctrl-C")] = False,
) -> None:
    """Run end-to-end on the sample wiki against a Prefect server; print the UI URL and artifact keys."""
    from flows.server import PrefectServer, flush_to_server

    if source not in ("wiki", "dumps"):
        raise ConfigError(f"--source must be 'wiki' or 'dumps', got {source!r}")
    home = _prefect_home(data)
    _exit_on_sigterm()
    root = os.environ["WIKIMIX_DATA"]
    server = PrefectServer(home=home, port=_pick_port(port))
    family = None
    typer.echo(f"starting the Prefect server at {server.url} (state in {home}) ...")
    started = time.monotonic()
    with server:
        os.environ["PREFECT_API_URL"] = server.api_url
        try:
            params: dict = {}
            if source == "wiki":
                family = _sample_family(Path(root))
                if family is None:
                    source = "dumps"
                else:
                    params["api_urls"] = family.api_urls()
            state, keys = _run_demo(source, [r for r in rankers.split(",") if r], params)
        finally:
            if family is not None:
                family.stop()
            flush_to_server()
        run_id = state.state_details.flow_run_id
        typer.echo(f"\nend-to-end {state.name} in {time.monotonic() - started:.0f} s")
        typer.echo(f"open the run:       {server.url}/runs/flow-run/{run_id}")
        typer.echo(f"all artifacts:      {server.url}/artifacts")
        typer.echo("artifact keys:      " + ", ".join(keys))
        if serve:
            typer.echo("serving; Ctrl-C stops the server")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        else:
            typer.echo(f"to browse later:    wikimix server --data {root}  (then open the URLs above)")
    if not state.is_completed():
        raise typer.Exit(1)


def _sample_family(root: Path):
    """The sample corpus as a local MediaWiki family, or None (with the reason) when MediaWiki is absent."""
    from flows.server import free_port
    from wikimix.localwiki import LocalWikiError, build_family, check_installed

    try:
        check_installed()
    except LocalWikiError as exc:
        typer.echo(f"no local MediaWiki ({exc}); building from the sample dumps instead")
        return None
    typer.echo("bringing up the sample wiki family (one MediaWiki per language) ...")
    port_base = free_port()
    while port_base > 60000:
        port_base = free_port()
    family = build_family(SAMPLE, SAMPLE / "concepts.tsv", root / ".wikifamily-demo", port_base=port_base)
    for lang, url in family.api_urls().items():
        typer.echo(f"  {lang}  {url}")
    return family


def _run_demo(source: str, rankers: list[str], params: dict):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    from flows.end_to_end import end_to_end
    from training.models import VARIANTS

    split = {"val_frac": 0.2, "test_frac": 0.2}  # a small corpus: enough held-out documents
    state = end_to_end(
        name="sample",
        source=source,
        max_chars=500,
        rankers=rankers,
        budget="smoke",
        variants=list(VARIANTS),  # every variant, at the smoke budget: the demo shows the whole table
        train_overrides=split,
        eval_overrides=split,
        return_state=True,
        **params,
    )
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]))
        )
        ids = [run_id] + [r.id for r in children]
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        )
    return state, sorted({a.key for a in found if a.key})


def server(data: DataOpt = None, port: PortOpt = 4200) -> None:
    """Run the Prefect server on <data root>/.prefect until Ctrl-C (the demo's runs stay browsable)."""
    from flows.server import PrefectServer

    home = _prefect_home(data)
    _exit_on_sigterm()
    with PrefectServer(home=home, port=port) as srv:
        typer.echo(f"Prefect UI: {srv.url}  (API {srv.api_url}; state in {home}); Ctrl-C stops it")
        typer.echo(f"in another shell: export PREFECT_HOME={home} PREFECT_API_URL={srv.api_url}")
        try:
            while srv.process is not None and srv.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def _prefect(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("prefect"))
    result = subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True)
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"prefect {' '.join(args)} failed: {tail[0]}")
    return result


def deploy() -> None:
    """Create the `wikimix` process work pool if missing and register every deployment of prefect.yaml."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("set PREFECT_API_URL to your server's API (e.g. http://127.0.0.1:4200/api)")
    if _prefect("work-pool", "inspect", POOL, check=False).returncode != 0:
        _prefect("work-pool", "create", POOL, "--type", "process")
        typer.echo(f"created work pool {POOL!r} (process)")
    out = _prefect("--no-prompt", "deploy", "--all").stdout
    for line in out.splitlines():
        if "successfully created" in line or "successfully updated" in line:
            typer.echo(line.strip(" │"))


def worker(data: DataOpt = None) -> None:
    """A process worker for the `wikimix` pool that runs flows from this checkout on the data root."""
    from storage.store import data_root

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("set PREFECT_API_URL to your server's API (e.g. http://127.0.0.1:4200/api)")
    root = data_root(data)
    env = {
        **os.environ,
        "WIKIMIX_REPO": str(REPO),
        "WIKIMIX_DATA": root if "://" in root else str(Path(root).resolve()),
    }
    exe = str(Path(sys.executable).with_name("prefect"))
    raise typer.Exit(subprocess.call([exe, "worker", "start", "--pool", POOL], cwd=REPO, env=env))


def serve(
    data: DataOpt = None,
    limit: Annotated[int | None, typer.Option(help="most flow runs at once (default: no limit)")] = None,
) -> None:
    """Serve every deployment of prefect.yaml (schedules, triggers) from this process; no work pool."""
    from storage.store import data_root

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("set PREFECT_API_URL to your server's API (e.g. http://127.0.0.1:4200/api)")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    root = data_root(data)
    os.environ["WIKIMIX_DATA"] = root if "://" in root else str(Path(root).resolve())
    os.chdir(REPO)  # the served flows' entrypoints are paths in this checkout
    from flows.serve import serve_all

    serve_all(limit=limit)  # until Ctrl-C or SIGTERM


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.command("demo")(demo)
    app.command("server")(server)
    app.command("deploy")(deploy)
    app.command("worker")(worker)
    app.command("serve")(serve)
