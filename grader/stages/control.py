"""The lane's control socket: how the hidden suite's pytest process asks the grader side for restarts,
Flask CLI commands, SQL (and held PostgreSQL sessions), the database, the app's environment and the
background worker, instead of driving the engine itself.

One JSON line per request (`{"id": n, "op": ..., "args": {...}}`) and one per answer, with the same id:
`{"ok": value, "app": {...}}` or `{"error": kind, "message": ...}`, where kind is `boot_failed`, `infra`,
`assertion`, `not_found`, `refused` (a file the app made a link, or too large) or `invalid`. Each answer
carries the app's current socket, container and image, which a restart or a spare changes. The socket lives
in the lane's work folder (mode 700), which the app cannot reach.
"""

from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path
from typing import Any

from grader.errors import BootFailed, InfraError
from grader.stages.lane import Lane

MAX_REQUEST = 1024 * 1024


def _exec_result(result: Any) -> dict[str, Any]:
    return {"exit_code": result.exit_code, "output": result.output, "timed_out": result.timed_out}


def _handle(lane: Lane, op: str, args: dict[str, Any]) -> Any:
    if op == "describe":
        return None
    if op == "run":
        return _exec_result(lane.run(list(args["argv"]), args.get("timeout")))
    if op == "flask":
        return _exec_result(lane.flask(list(args["args"]), args.get("timeout")))
    if op == "use_category":
        return lane.use_category(str(args["category"]))
    if op == "restart":
        return lane.restart(bool(args.get("fresh_db", True)), bool(args.get("setup", True)), bool(args.get("serve", True)))
    if op == "ensure_serving":
        return lane.ensure_serving()
    if op == "reset_database":
        return lane.reset_database()
    if op == "sql":
        return lane.sql([(str(s), list(p)) for s, p in args["pairs"]])
    if op == "copy_database":
        return str(lane.copy_database())
    if op == "database_bytes":
        return str(lane.database_bytes())
    if op == "app_running":
        return lane.app_running()
    if op == "hold":
        return lane.hold(str(args["name"]), str(args["statement"]), list(args.get("params") or []))
    if op == "release":
        return lane.release(str(args["name"]), bool(args.get("commit", False)))
    if op == "environment":
        return dict(lane.pod.environment)
    if op.startswith("worker_"):
        return _worker(lane, op.removeprefix("worker_"))
    if op == "get_state":
        return lane.state
    if op == "set_state":
        lane.state = str(args["state"])
        return None
    raise KeyError(f"unknown operation {op!r}")


def _worker(lane: Lane, op: str) -> Any:
    if lane.worker is None:
        raise AssertionError("this assignment has no worker (run.worker)")
    actions = {
        "start": lane.worker.start, "ensure": lane.worker.ensure, "stop": lane.worker.stop, "kill": lane.worker.kill,
        "running": lane.worker.running, "output": lane.worker.output,
    }
    if op not in actions:
        raise KeyError(f"unknown worker operation {op!r}")
    return actions[op]()


def answer(lane: Lane, request: dict[str, Any]) -> dict[str, Any]:
    """One request's answer; the lane's operations take turns."""
    try:
        with lane.lock:
            value = _handle(lane, str(request.get("op")), dict(request.get("args") or {}))
            app = {"socket_path": str(lane.pod.socket_path), "app_container": lane.pod.app_container, "image": lane.pod.image}
        return {"ok": value, "app": app}
    except BootFailed as exc:
        return {"error": "boot_failed", "message": exc.reason}
    except InfraError as exc:
        return {"error": "infra", "message": exc.reason}
    except AssertionError as exc:
        return {"error": "assertion", "message": str(exc)}
    except FileNotFoundError as exc:
        return {"error": "not_found", "message": str(exc)}
    except ValueError as exc:  # the app's doing: a database that is a link, or too large
        return {"error": "refused", "message": str(exc)}
    except (KeyError, TypeError) as exc:
        return {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"}


class _Handler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_REQUEST)
            if not line:
                return
            try:
                request = json.loads(line)
            except json.JSONDecodeError:
                reply = {"error": "invalid", "message": "not a JSON line"}
            else:
                valid = isinstance(request, dict)
                reply = answer(self.server.lane, request) if valid else {"error": "invalid", "message": "not an object"}
            if isinstance(request, dict) and "id" in request:
                reply["id"] = request["id"]
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serves one lane's control socket in a daemon thread until `close`."""

    daemon_threads = True

    def __init__(self, lane: Lane, path: Path) -> None:
        path.unlink(missing_ok=True)
        super().__init__(str(path), _Handler)
        path.chmod(0o600)
        self.lane, self.path = lane, path
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)
