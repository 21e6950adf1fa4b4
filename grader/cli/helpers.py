"""What every `grader` command shares: the exit codes, the one error printer, settings from options, the seams' guards.

Exit codes, the same for every command (scripts and the README depend on them):

    0  EXIT_OK        done; for `grade`, a report was written (graded, build_failed, boot_failed)
    1  EXIT_FAILED    anything else: unknown submission, nothing to regrade, a check mismatch, an invalid folder
    2  EXIT_REJECTED  the source was rejected, or the input is invalid (unknown assignment for the queue, bad role)
    3  EXIT_INFRA     infra_error: our machinery (Docker engine, Redis, database) is unavailable
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from grader.db.engine import open_store
from grader.db.store import Store
from grader.errors import InfraError
from grader.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2
EXIT_INFRA = 3
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
log = logging.getLogger("grader")


def print_error(message: str) -> None:
    """`error: <message>` on stderr, on one line however long (scripts grep for it), the message never read as markup."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


def fail(message: str, code: int) -> typer.Exit:
    """Print the error and return the exit to raise: `raise fail("no submission ...", EXIT_FAILED) from None`."""
    print_error(message)
    return typer.Exit(code)


@contextmanager
def infra_errors() -> Iterator[None]:
    """An InfraError inside (engine or Redis unreachable) ends the command with its reason and EXIT_INFRA."""
    try:
        yield
    except InfraError as exc:
        raise fail(exc.reason, EXIT_INFRA) from None


def load_settings(*, log_level: int | None = logging.DEBUG, **options: object) -> Settings:
    """The environment's settings with the command's options on top (None: not given), logged at `log_level`.

    One-shot commands log them at DEBUG; long-running ones pass None and call `log_settings` at INFO once they
    have resolved what their processes run with.
    """
    settings = Settings(**{name: value for name, value in options.items() if value is not None})  # type: ignore[arg-type]
    if log_level is not None:
        log_settings(settings, log_level)
    return settings


def log_settings(settings: Settings, level: int = logging.INFO) -> None:
    """Every setting on one log line, secrets masked."""
    log.log(level, "settings: %s", json.dumps(settings.masked()))


def configure_logging() -> None:
    """Log lines of long-running commands (`worker`, `serve`) on stderr, at INFO, in the workers' format."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)


def open_store_or_fail(settings: Settings) -> Store:
    """The submissions store, its schema upgraded, or EXIT_INFRA with what the database said."""
    try:
        return open_store(settings)
    except SQLAlchemyError as exc:
        shown = settings.masked()["database"]["url"] or settings.database_url  # no password on screen
        raise fail(f"the database at {shown} is not usable: {exc}", EXIT_INFRA) from None
