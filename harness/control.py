"""`app_control` for hidden tests: the app driven through the lane's control socket on the grader's side
(grader/stages/control.py). This process holds no engine client and no settings; it only asks.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import BootFailed, InfraError
from grader.models import SuiteSession
from grader.sandbox import ExecResult


@dataclass(frozen=True)
class AppView:
    """The lane's app as tests may name it: a new container means a new, empty database."""

    socket_path: Path
    app_container: str
    image: str


class AppControl:
    """Restarts, Flask CLI commands, SQL and the database file, each one request to the grader side.

    `state` is a tag a suite may set to name the database's state (e.g. "migrations:head"), so a later test
    can reuse it instead of rebuilding it; every restart and `reset_database` clears it.
    """

    def __init__(self, session: SuiteSession) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(str(session.control_socket))
        self._stream = self._socket.makefile("rwb")
        self.request_timeout_s = session.request_timeout_s
        self._number = 0
        self.pod: AppView
        self._ask("describe")  # every answer names the app as it is now: its socket, container and image

    def _ask(self, op: str, **args: Any) -> Any:
        """One request and its answer. Answers carry the request's number: a test stopped at its time limit
        while waiting leaves an answer behind, which the next request skips."""
        self._number += 1
        self._stream.write(json.dumps({"id": self._number, "op": op, "args": args}).encode() + b"\n")
        self._stream.flush()
        while True:
            line = self._stream.readline()
            if not line:
                raise InfraError(f"the grader's lane control closed during {op!r}")
            reply = json.loads(line)
            if reply.get("id") == self._number:
                break
        if "error" in reply:
            kind, message = reply["error"], reply.get("message", "")
            if kind == "boot_failed":
                raise BootFailed(message)
            if kind == "assertion":
                raise AssertionError(message)
            if kind == "not_found":
                raise FileNotFoundError(message)
            if kind == "refused":
                raise ValueError(message)
            raise InfraError(f"the grader's lane control failed during {op!r}: {message}")
        app = reply["app"]
        self.pod = AppView(Path(app["socket_path"]), app["app_container"], app["image"])
        return reply["ok"]

    def run(self, argv: list[str], timeout: float | None = None) -> ExecResult:
        return ExecResult(**self._ask("run", argv=argv, timeout=timeout))

    def flask(self, *args: str, timeout: float | None = None) -> ExecResult:
        """`flask --app wsgi ARGS` in the app's environment (its venv, env vars, /app)."""
        return ExecResult(**self._ask("flask", args=list(args), timeout=timeout))

    def use_category(self, category: str) -> None:
        """Serve the app the way this category asks; the switch happens at the next restart."""
        self._ask("use_category", category=category)

    def restart(self, fresh_db: bool = True, setup: bool = True, serve: bool = True) -> None:
        """Replace the app container; `setup=False` leaves the database empty (no `db upgrade`); `serve=False`
        runs no server (for tests that only use the Flask CLI and SQL). A failed boot raises BootFailed."""
        self._ask("restart", fresh_db=fresh_db, setup=setup, serve=serve)

    def ensure_serving(self) -> None:
        """A fresh, migrated app serving the current category's command, unless the current one already is."""
        self._ask("ensure_serving")

    def reset_database(self) -> None:
        """An empty database, in a container that serves nothing."""
        self._ask("reset_database")

    def sql(self, *statements: str | tuple[str, list[object]]) -> list[list[object]]:
        """SQL on the app's database in one transaction, the rows of the last statement: SQLite's (`?`
        parameters), or PostgreSQL's as its superuser (`%s` parameters) when the pod has that service."""
        pairs = [(s, []) if isinstance(s, str) else (s[0], list(s[1])) for s in statements]
        rows: list[list[object]] = self._ask("sql", pairs=pairs)
        return rows

    def copy_database(self, dest_dir: Path | None = None) -> Path:
        """The database file, copied out through the engine's archive API (links are refused)."""
        dest_dir = dest_dir or Path(tempfile.mkdtemp(prefix="grader-db-"))
        return Path(shutil.copyfile(self._ask("copy_database"), dest_dir / "app.db"))

    def database_bytes(self) -> bytes:
        """The database file and its write-ahead log if any, as raw bytes, for looking for plaintext."""
        return Path(self._ask("database_bytes")).read_bytes()

    def app_running(self) -> bool:
        return bool(self._ask("app_running"))

    def hold(self, name: str, statement: str, params: list[object] | None = None) -> list[list[object]]:
        """SQL in a named PostgreSQL session whose transaction stays open across requests (e.g. `LOCK TABLE
        records IN SHARE MODE`) until `release`, a restart on a fresh database, or the end of the lane."""
        rows: list[list[object]] = self._ask("hold", name=name, statement=statement, params=params or [])
        return rows

    def release(self, name: str, commit: bool = False) -> None:
        self._ask("release", name=name, commit=commit)

    @property
    def environment(self) -> dict[str, str]:
        """The app's environment as the grader set it: its secrets and the parameters drawn for this app."""
        return dict(self._ask("environment"))

    @property
    def worker(self) -> WorkerControl:
        return WorkerControl(self)

    @property
    def state(self) -> str:
        return str(self._ask("get_state"))

    @state.setter
    def state(self, value: str) -> None:
        self._ask("set_state", state=value)


class WorkerControl:
    """The assignment's background worker (run.worker) in its own container beside the app."""

    def __init__(self, control: AppControl) -> None:
        self._control = control

    def start(self) -> dict[str, Any]:
        """A new worker (the previous one removed), waited until ready: `{"n": starts, "ready_s": seconds}`;
        BootFailed when it never becomes ready."""
        return dict(self._control._ask("worker_start"))

    def ensure(self) -> dict[str, Any]:
        """The running worker, or a new one as `start` makes it."""
        return dict(self._control._ask("worker_ensure"))

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 10 s; the exit code."""
        code = self._control._ask("worker_stop")
        return None if code is None else int(code)

    def kill(self) -> int:
        """SIGKILL every process of the worker at once, then end its database sessions; how many were ended."""
        return int(self._control._ask("worker_kill"))

    def running(self) -> bool:
        return bool(self._control._ask("worker_running"))

    def output(self) -> str:
        return str(self._control._ask("worker_output"))
