"""Control of the app from hidden tests: Flask CLI commands, restarts on a fresh database, the database file."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import docker.errors
from pydantic import BaseModel, ConfigDict

from grader.errors import BootFailed
from grader.models import Pod
from grader.sandbox import forkserver
from grader.sandbox.docker import connect, copy_file_out
from grader.sandbox.pod import ExecResult, exec_in_app, ready_or_idle, restart_app, start_spare
from grader.settings import Settings

MAX_DATABASE_BYTES = 64 * 1024 * 1024
MAX_SQL_OUTPUT = 4 * 1024 * 1024
_SQL_SCRIPT = """
import json, os, sqlite3, sys
pairs = json.loads(sys.argv[2])
if not os.path.exists(sys.argv[1]) and all(s.lstrip().upper().startswith(("SELECT", "PRAGMA")) for s, _ in pairs):
    print("[]")
    sys.exit(0)
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=rw", uri=True, timeout=30)
rows = []
for statement, params in pairs:
    rows = db.execute(statement, params).fetchall()
db.commit()
print(json.dumps([[v.hex() if isinstance(v, bytes) else v for v in row] for row in rows]))
"""


class LaneBootFailure(BaseModel):
    """The lane's app failed to boot before its suite started; the tests that need it served fail with this."""

    serve: str
    reason: str
    log_tail: str = ""


class SuiteSession(BaseModel):
    """What the grader hands the pytest process: the pod and the settings it was started with."""

    model_config = ConfigDict(extra="forbid")

    pod: Pod
    settings: dict[str, object]
    serve_by_category: dict[str, str] = {}
    spare_serves: list[str] = []
    boot_failures: list[LaneBootFailure] = []


class AppControl:
    """Drives the app container through the engine; never through anything the app could fake.

    `state` is a tag a suite may set to name the database's state (e.g. "migrations:head"), so a later
    test can reuse it instead of rebuilding it; every restart and `reset_database` clears it.
    """

    def __init__(self, session: SuiteSession) -> None:
        self.pod = session.pod
        self.settings = Settings.model_validate(session.settings)
        self.serve_by_category = session.serve_by_category
        self._client = connect(self.settings)
        self.needs_restore = False
        self._boot_failures: dict[tuple[str, bool], BootFailed] = {
            (f.serve, True): _with_output(BootFailed(f.reason, log_tail=f.log_tail)) for f in session.boot_failures
        }
        self.state = ""
        self._spares: dict[str, Future[Pod]] = {}
        for index, serve in enumerate(session.spare_serves):
            self._spares[serve] = _in_background(
                start_spare, self.pod, serve, f"{self.pod.lane}-{index + 1}", self.settings, self._client
            )

    def run(self, argv: list[str], timeout: float | None = None) -> ExecResult:
        return exec_in_app(
            self.pod, self._client, argv, timeout or self.settings.timeouts.exec_s, self.settings.sandbox.log_bytes
        )

    def flask(self, *args: str, timeout: float | None = None) -> ExecResult:
        """`flask --app wsgi ARGS` in the app's environment (its venv, env vars, /app), forked by the app
        container's fork server from its preloaded libraries when it has one (see grader/forkserver.py)."""
        client = [self.settings.sandbox.system_python, "-I", "-S", "-c", forkserver.source(), "client", forkserver.SOCKET_PATH]
        return self.run([*client, "flask", "--app", "wsgi", *args], timeout=timeout)

    def use_category(self, category: str) -> None:
        """Serve the app the way this category asks (its own `serve`, else the assignment's); the
        switch happens at the next restart, so phases that restart anyway boot once."""
        serve = self.serve_by_category.get(category)
        if serve and serve != self.pod.serve:
            self.pod = self.pod.model_copy(update={"serve": serve})

    def restart(self, fresh_db: bool = True, setup: bool = True, serve: bool = True) -> None:
        """Replace the app container; `setup=False` leaves the database empty (no `db upgrade`);
        `serve=False` runs no server at all (fast, for tests that only use the Flask CLI and SQL).

        A test that leaves the app unmigrated or not serving marks it dirty: the next test that asks
        for `client` gets a fresh, migrated, serving app first. A boot that failed once is not tried
        again for every test: the same failure is raised at once. After a failed boot an idle container
        on the same database takes its place, so Flask CLI commands and SQL still have somewhere to run.
        """
        key = (self.pod.serve, setup)
        if serve and key in self._boot_failures:
            raise self._boot_failures[key]
        self.state = ""
        self.needs_restore = True
        self.pod = restart_app(
            self.pod, self._client, self.settings, fresh_db=fresh_db, setup=setup, serve=serve, wait=False
        )
        if serve:
            self.pod, failed = ready_or_idle(self.pod, self._client, self.settings)
            if failed is not None:
                failure = self._boot_failures[key] = _with_output(failed)
                raise failure from None
        self.needs_restore = not (setup and serve)

    def ensure_serving(self) -> None:
        """A fresh, migrated app serving the current category's command, unless the current one already is.

        A spare pod booted in the background for this serve command (a later category's, see
        `SuiteSession.spare_serves`) is taken when there is one, instead of booting now.
        """
        if not (self.needs_restore or self.pod.serving != self.pod.serve or not self.app_running()):
            return
        spare = self._spares.pop(self.pod.serve, None)
        if spare is None:
            self.restart(fresh_db=True, setup=True, serve=True)
            return
        try:
            pod = spare.result()
        except BootFailed as exc:
            failure = self._boot_failures[(self.pod.serve, True)] = _with_output(exc)
            raise failure from None
        with contextlib.suppress(docker.errors.NotFound):
            self._client.containers.get(self.pod.app_container).remove(force=True)
        self.pod, self.state, self.needs_restore = pod, "", False

    def reset_database(self) -> None:
        """An empty database without a new container: the data volume's files are deleted.

        Only while no server runs (an idle container), so no process holds the old file open;
        otherwise the app container is replaced on a fresh volume.
        """
        self.state = ""
        if self.pod.serving or not self.app_running():
            self.restart(fresh_db=True, setup=False, serve=False)
            return
        result = self.run(["/bin/sh", "-c", 'rm -rf -- /data/* /data/.[!.]* /data/..?*'])
        if result.exit_code != 0:
            self.restart(fresh_db=True, setup=False, serve=False)

    def sql(self, *statements: str | tuple[str, list[object]]) -> list[list[object]]:
        """Run SQL on the app's SQLite database with the system Python (isolated mode); rows of the last one.

        A database file that does not exist yet reads as an empty database; writing to it fails."""
        pairs = [(s, []) if isinstance(s, str) else (s[0], list(s[1])) for s in statements]
        result = exec_in_app(
            self.pod, self._client,
            [self.settings.sandbox.system_python, "-I", "-S", "-c", _SQL_SCRIPT, self.pod.database_path, json.dumps(pairs)],
            self.settings.timeouts.exec_s, MAX_SQL_OUTPUT,
        )
        if result.exit_code != 0:
            raise AssertionError(f"SQL on the app's database failed: {result.output[-800:]}")
        return json.loads(result.output.strip().splitlines()[-1])

    def copy_database(self, dest_dir: Path | None = None) -> Path:
        """The database file, copied out through the engine's archive API (links are refused)."""
        dest_dir = dest_dir or Path(tempfile.mkdtemp(prefix="grader-db-"))
        container = self._client.containers.get(self.pod.app_container)
        return copy_file_out(container, self.pod.database_path, dest_dir / "app.db", MAX_DATABASE_BYTES)

    def database_bytes(self) -> bytes:
        """The database file and its write-ahead log if any, as raw bytes, for looking for plaintext."""
        data = self.copy_database().read_bytes()
        container = self._client.containers.get(self.pod.app_container)
        for suffix in ("-wal", "-journal"):
            try:
                extra = copy_file_out(
                    container, self.pod.database_path + suffix,
                    Path(tempfile.mkdtemp(prefix="grader-db-")) / "extra", MAX_DATABASE_BYTES,
                )
            except (FileNotFoundError, ValueError):
                continue
            data += extra.read_bytes()
        return data

    def app_running(self) -> bool:
        try:
            container = self._client.containers.get(self.pod.app_container)
        except Exception:
            return False
        return container.status == "running"


def _with_output(exc: BootFailed) -> BootFailed:
    """The boot failure as a test reports it: the reason and the end of the app's output on one line."""
    tail = " ".join(exc.log_tail.split())[-800:]
    reason = exc.reason.replace("; see its output below", "")
    return BootFailed(reason + (f"; its output ends: {tail}" if tail else ""))


def _in_background(function: Callable[..., Pod], *args: object) -> Future[Pod]:
    """Run `function` in a daemon thread (it must not keep a finished suite process alive)."""
    future: Future[Pod] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to the test that takes the result
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future
