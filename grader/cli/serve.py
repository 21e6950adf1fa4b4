"""`grader serve`: the whole service in one command (web app, grading workers, embedded Redis, webhook dispatcher)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from types import FrameType

import typer

from grader.cli.helpers import configure_logging, infra_errors, load_settings, log_settings, open_store_or_fail
from grader.db.engine import open_store
from grader.queue.broker import connect_redis, redis_url
from grader.settings import Settings

log = logging.getLogger(__name__)


def _workers_process(settings: Settings, concurrency: int) -> None:
    from grader.queue.workers import run_workers

    sys.exit(run_workers(settings, concurrency, burst=False))


def serve(
    host: str = typer.Option("127.0.0.1", help="Address the web app listens on."),
    port: int = typer.Option(8080, help="Port of the web app."),
    workers: int = typer.Option(1, "--workers", "-w", min=0, help="Grading worker processes (0: none here)."),
    web_workers: int = typer.Option(2, "--web-workers", min=1, help="Gunicorn processes of the web app."),
) -> None:
    """Run the whole service: the web app under Gunicorn, grading workers, Redis (embedded unless REDIS_URL)."""
    from grader.queue.hosts import refuse_sqlite_across_hosts
    from grader.web import secret_key
    from grader.webhooks import Dispatcher

    configure_logging()
    settings = load_settings(log_level=None)
    with infra_errors():
        connection = connect_redis(settings)
        if workers:
            refuse_sqlite_across_hosts(settings, connection)
    settings = settings.replace(redis_url=redis_url(settings))
    log_settings(settings, logging.INFO)
    open_store_or_fail(settings).engine.dispose()  # the schema, upgraded once before the processes start
    secret_key(settings)  # made once, then read by every web process
    children: list[tuple[str, multiprocessing.process.BaseProcess | subprocess.Popen[bytes]]] = []
    if workers:
        process = multiprocessing.get_context("fork").Process(
            target=_workers_process, args=(settings, workers), name="grader-workers")
        process.start()
        children.append(("workers", process))
    env = {**os.environ, "GRADER_REDIS_URL": settings.redis_url or ""}
    # --no-control-socket: Gunicorn 25.1+ otherwise opens ~/.gunicorn/gunicorn.ctl, one path for every `grader serve` of
    # the user on this host: each serve unlinks the last one's socket to bind its own, and removes the path on exit.
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(web_workers),
         "--worker-class", "gthread", "--threads", "8", "--access-logfile", "-", "--no-control-socket",
         "grader.web.wsgi:app"], env=env)
    children.append(("web", web))
    dispatcher = Dispatcher(settings, open_store(settings))
    dispatcher.start()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"grader: serving on http://{host}:{port}/ with {workers} grading worker(s)", err=True)
    while not stopping and all(_alive(child) for _, child in children):
        time.sleep(0.3)
    dispatcher.stop()
    for name, child in children:
        if _alive(child) and child.pid is not None:
            log.info("stopping %s (%s)", name, child.pid)
            os.kill(child.pid, signal.SIGTERM)
    for _, child in children:
        child.join(60) if isinstance(child, multiprocessing.process.BaseProcess) else child.wait(60)
    raise typer.Exit(0 if stopping else 1)


def _alive(child: multiprocessing.process.BaseProcess | subprocess.Popen[bytes]) -> bool:
    return child.is_alive() if isinstance(child, multiprocessing.process.BaseProcess) else child.poll() is None

