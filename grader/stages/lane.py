"""One lane's app, driven on the grader's side: what the hidden tests' `app_control` asks for over the lane's
control socket (grader/stages/control.py) is done here, through the Sandbox seam.

A lane owns its pod (relay + app container) and the spare pods booted in the background for its later
categories that serve the app differently. Only this module and grader/stages/lanes.py start pods after
the first; the pytest process never touches the engine.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from grader.assignments.model import WorkerSpec
from grader.errors import BootFailed
from grader.models import Pod
from grader.sandbox import ExecResult, Sandbox, forkserver
from grader.sandbox.pod import exec_in_app, ready_or_idle, restart_app, start_spare
from grader.sandbox.services import dump_database
from grader.settings import Settings
from grader.stages.database import PodDatabase
from grader.stages.diagnose import entry_point, refine_boot_failure
from grader.stages.lane_worker import LaneWorker

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


class Lane:
    """The app of one lane as its tests see it: restarts, Flask CLI commands, SQL, the database file.

    `state` is a tag a suite may set to name the database's state (e.g. "migrations:head"), so a later
    test can reuse it instead of rebuilding it; every restart and `reset_database` clears it.
    """

    def __init__(
        self, pod: Pod, sandbox: Sandbox, settings: Settings, *, serve_by_category: dict[str, str],
        spare_serves: Sequence[str] = (), boot_failures: dict[str, BootFailed] | None = None,
        work: Path, worker: WorkerSpec | None = None,
    ) -> None:
        self.pod, self.sandbox, self.settings, self.work = pod, sandbox, settings, work
        self.database = PodDatabase(pod, settings.timeouts.exec_s) if "postgresql" in pod.services else None
        self.worker = LaneWorker(self, worker) if worker is not None else None
        self.serve_by_category = serve_by_category
        self.needs_restore = False
        self.state = ""
        self.lock = threading.Lock()
        self._boot_failures: dict[tuple[str, bool], BootFailed] = {
            (serve, True): _with_output(exc) for serve, exc in (boot_failures or {}).items()
        }
        self._spares: dict[str, Future[Pod]] = {
            serve: _in_background(start_spare, pod, serve, f"{pod.lane}-{index + 1}", settings, sandbox)
            for index, serve in enumerate(spare_serves)
        }

    def close(self) -> None:
        """Wait for spares still booting (bounded by the boot limit), so none starts after the job's cleanup;
        end the held database sessions."""
        if self.database is not None:
            self.database.reset(self.pod)
        for spare in self._spares.values():
            try:
                spare.result(timeout=self.settings.timeouts.boot_s + 30)
            except Exception:  # a spare nobody took; its failure matters to no test
                pass

    def run(self, argv: list[str], timeout: float | None = None) -> ExecResult:
        return exec_in_app(
            self.pod, self.sandbox, argv, timeout or self.settings.timeouts.exec_s, self.settings.sandbox.log_bytes
        )

    def flask(self, args: list[str], timeout: float | None = None) -> ExecResult:
        """`flask --app wsgi ARGS` in the app's environment, forked by the app container's fork server when it
        has one (see grader/sandbox/forkserver.py)."""
        client = [self.settings.sandbox.system_python, "-I", "-S", forkserver.IMAGE_PATH, "client", forkserver.SOCKET_PATH]
        return self.run([*client, "flask", "--app", "wsgi", *args], timeout=timeout)

    def use_category(self, category: str) -> None:
        """Serve the app the way this category asks; the switch happens at the next restart."""
        serve = self.serve_by_category.get(category)
        if serve and serve != self.pod.serve:
            self.pod = self.pod.model_copy(update={"serve": serve})

    def restart(self, fresh_db: bool = True, setup: bool = True, serve: bool = True) -> None:
        """Replace the app container; `setup=False` leaves the database empty, `serve=False` runs no server.

        A test that leaves the app unmigrated or not serving marks it dirty: the next test that asks for
        `client` gets a fresh, migrated, serving app first. A boot that failed once is raised again at once.
        After a failed boot an idle container on the same database takes its place, for the Flask CLI and SQL.
        """
        key = (self.pod.serve, setup)
        if serve and key in self._boot_failures:
            raise self._boot_failures[key]
        self.state = ""
        self.needs_restore = True
        restarted = restart_app(self.pod, self.sandbox, self.settings, fresh_db=fresh_db, setup=setup, serve=serve, wait=False)
        self._replace_pod(restarted)
        if serve:
            self.pod, failed = ready_or_idle(self.pod, self.sandbox, self.settings)
            if failed is not None:
                failure = self._boot_failures[key] = _with_output(refine_boot_failure(failed, entry=entry_point(self.pod.serve)))
                raise failure from None
        self.needs_restore = not (setup and serve)

    def ensure_serving(self) -> None:
        """A fresh, migrated app serving the current category's command, unless the current one already is;
        a spare booted in the background for this command is taken when there is one."""
        if not (self.needs_restore or self.pod.serving != self.pod.serve or not self.app_running()):
            return
        spare = self._spares.pop(self.pod.serve, None)
        if spare is None:
            self.restart(fresh_db=True, setup=True, serve=True)
            return
        try:
            pod = spare.result()
        except BootFailed as exc:
            refined = refine_boot_failure(exc, entry=entry_point(self.pod.serve))
            failure = self._boot_failures[(self.pod.serve, True)] = _with_output(refined)
            raise failure from None
        self.sandbox.remove(self.pod.app_container)
        self._replace_pod(pod)
        self.state, self.needs_restore = "", False

    def _replace_pod(self, pod: Pod) -> None:
        """A new app container; on a new database the held sessions end and a running worker goes (it was told
        the old database), so the next test that needs one starts it afresh."""
        new_database = pod.database != self.pod.database or pod.relay_container != self.pod.relay_container
        self.pod = pod
        if new_database and self.database is not None:
            self.database.reset(pod)
        if new_database and self.worker is not None:
            self.worker.remove()

    def reset_database(self) -> None:
        """An empty database: the data volume's files deleted while no server runs, else a fresh volume; with
        PostgreSQL always a new database and role (its files are not the app's to delete)."""
        self.state = ""
        if self.database is not None or self.pod.serving or not self.app_running():
            self.restart(fresh_db=True, setup=False, serve=False)
            return
        if self.run(["/bin/sh", "-c", "rm -rf -- /data/* /data/.[!.]* /data/..?*"]).exit_code != 0:
            self.restart(fresh_db=True, setup=False, serve=False)

    def sql(self, pairs: list[tuple[str, list[object]]]) -> list[list[object]]:
        """SQL on the app's database, rows of the last statement: PostgreSQL's as its superuser (`%s` parameters),
        or SQLite's with the system Python (isolated mode, `?` parameters), where a database file that does not
        exist yet reads as an empty database and writing to it fails."""
        if self.database is not None:
            return self.database.sql(pairs)
        result = exec_in_app(
            self.pod, self.sandbox,
            [self.settings.sandbox.system_python, "-I", "-S", "-c", _SQL_SCRIPT, self.pod.database_path, json.dumps(pairs)],
            self.settings.timeouts.exec_s, MAX_SQL_OUTPUT,
        )
        if result.exit_code != 0:
            raise AssertionError(f"SQL on the app's database failed: {result.output[-800:]}")
        rows: list[list[object]] = json.loads(result.output.strip().splitlines()[-1])
        return rows

    def copy_database(self) -> Path:
        """The database file, copied out through the engine's archive API (links are refused)."""
        folder = Path(tempfile.mkdtemp(prefix="db-", dir=self.work))
        return self.sandbox.copy_out(self.pod.app_container, self.pod.database_path, folder / "app.db", MAX_DATABASE_BYTES)

    def hold(self, name: str, statement: str, params: list[object]) -> list[list[object]]:
        """SQL in a named PostgreSQL session whose transaction stays open until `release` (e.g. a LOCK TABLE)."""
        if self.database is None:
            raise AssertionError("held sessions need the PostgreSQL service")
        return self.database.hold(name, statement, params)

    def release(self, name: str, commit: bool = False) -> None:
        if self.database is not None:
            self.database.release(name, commit)

    def database_bytes(self) -> Path:
        """The database file and its write-ahead log or journal if any, concatenated, for looking for plaintext;
        with PostgreSQL, the app's database as `pg_dump` writes it."""
        if self.database is not None:
            dump = Path(tempfile.mkdtemp(prefix="db-", dir=self.work)) / "dump.sql"
            dump.write_text(dump_database(self.sandbox, self.pod, MAX_DATABASE_BYTES))
            return dump
        path = self.copy_database()
        with path.open("ab") as out:
            for suffix in ("-wal", "-journal"):
                try:
                    extra = self.sandbox.copy_out(
                        self.pod.app_container, self.pod.database_path + suffix, path.with_suffix(suffix), MAX_DATABASE_BYTES
                    )
                except (FileNotFoundError, ValueError):
                    continue
                out.write(extra.read_bytes())
        return path

    def app_running(self) -> bool:
        return self.sandbox.state(self.pod.app_container).running


def _with_output(exc: BootFailed) -> BootFailed:
    """The boot failure as a test reports it: the reason and the end of the app's output on one line."""
    tail = " ".join(exc.log_tail.split())[-800:]
    reason = exc.reason.replace("; see its output below", "")
    return BootFailed(reason + (f"; its output ends: {tail}" if tail else ""))


def _in_background(function: Callable[..., Pod], *args: object) -> Future[Pod]:
    """Run `function` in a daemon thread; `Lane.close` waits for it."""
    future: Future[Pod] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to the test that takes the result
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future

