"""`grader serve` (web app, grading workers, embedded Redis, webhook dispatcher) and `grader users create`."""

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
from rich.console import Console
from sqlalchemy.exc import IntegrityError

from grader.db.store import open_store
from grader.queue.broker import BrokerUnavailable, connect_redis, redis_url
from grader.settings import Settings

users_app = typer.Typer(no_args_is_help=True, help="Staff accounts of the web app.")
EXIT_INVALID = 2
EXIT_INFRA = 3
log = logging.getLogger(__name__)


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


@users_app.command("create")
def users_create(
    email: str = typer.Argument(..., help="The user's e-mail, which is their login."),
    role: str = typer.Option(..., "--role", help="admin or reviewer."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="Asked for when not given (at least 8 characters)."),
) -> None:
    """Create an administrator or reviewer account."""
    from grader.web.accounts import Accounts, Role

    if role not in (r.value for r in Role):
        raise _fail(f"--role must be admin or reviewer, not {role!r}", EXIT_INVALID)
    if len(password) < 8:
        raise _fail("the password needs at least 8 characters", EXIT_INVALID)
    accounts = Accounts(open_store(Settings()).engine)
    try:
        user = accounts.create_user(email, password, Role(role))
    except IntegrityError:
        raise _fail(f"a user {email!r} exists already", EXIT_INVALID) from None
    typer.echo(f"{user.email}: {user.role.value}")


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
    from grader.web import secret_key
    from grader.webhooks import Dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    settings = Settings()
    try:
        connect_redis(settings)
    except BrokerUnavailable as exc:
        raise _fail(exc.reason, EXIT_INFRA) from None
    settings = settings.replace(redis_url=redis_url(settings))
    open_store(settings).engine.dispose()  # the schema, upgraded once before the processes start
    secret_key(settings)  # made once, then read by every web process
    children: list[tuple[str, multiprocessing.process.BaseProcess | subprocess.Popen[bytes]]] = []
    if workers:
        process = multiprocessing.get_context("fork").Process(
            target=_workers_process, args=(settings, workers), name="grader-workers")
        process.start()
        children.append(("workers", process))
    env = {**os.environ, "GRADER_REDIS_URL": settings.redis_url or ""}
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(web_workers),
         "--worker-class", "gthread", "--threads", "8", "--access-logfile", "-", "grader.web.wsgi:app"], env=env)
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


def register(app: typer.Typer) -> None:
    """Add `serve` and `users create` to the `grader` app (one line in grader/cli.py)."""
    app.command()(serve)
    app.add_typer(users_app, name="users")
