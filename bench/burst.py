"""A burst through two worker hosts (issue #17): N submissions of a tiny assignment, submitted at once through the
web app's API, graded by two `grader worker` processes that act as two hosts (each its own data directory and, under
`unshare --uts`, its own host name) on one Redis and one PostgreSQL, while 50 pollers read their status through
GET /api/submissions/<id>. Printed: whether each was graded exactly once and none lost, how far the order of
completion strays from the order of arrival, the wall time and grades per minute, and the pollers' latency.

Run alone: `python bench/burst.py [--submissions N] [--pollers 50]`, or `bench/run.py --only-burst`; figures are
saved under "burst" in bench/results.json. A benchmark, not a test: nothing is asserted. When N is below 200 the
time of 200 is extrapolated from the measured rate, and printed as such.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import git_repository

from grader.db.engine import open_store
from grader.db.store import SubmissionRecord
from grader.settings import PROJECT_ROOT, Settings
from tests.loopback import free_port
from tests.postgres import new_database, private_cluster

SUBMISSIONS = 200
POLLERS = 50
POLL_INTERVAL_S = 1.0
TARGET_P95_MS = 200.0
HOSTS = ("burst-h1", "burst-h2")
REQUIREMENTS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions" / "reference" / "requirements.txt"
"""The tiny app installs the flask-notes reference's requirements: their dependency layer is cached by warm grades."""

TOML = """\
id = "burst"
title = "Burst: one page, one hidden test"
version = "1"

[run]
setup = []
serve = "gunicorn --config /dev/null --workers 1 --bind 127.0.0.1:8000 wsgi:app"
port = 8000
ready_path = "/"

[[categories]]
id = "hello"
title = "Says hello"
weight = 1
"""
TEST = 'def test_hello(client):\n    """GET / says hello."""\n    assert client.get("/").text == "hello"\n'
APP = 'from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.get("/")\ndef hello():\n    return "hello"\n'


def write_assignment(root: Path) -> Path:
    """The assignments folder holding only `burst`."""
    folder = root / "assignments" / "burst"
    (folder / "tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(TOML)
    (folder / "brief.md").write_text("# Burst\n\nServe hello at /.\n")
    (folder / "tests" / "test_hello.py").write_text(TEST)
    return folder.parent


def _solution(root: Path) -> Path:
    solution = root / "solution-src"
    solution.mkdir()
    (solution / "wsgi.py").write_text(APP)
    shutil.copy(REQUIREMENTS, solution / "requirements.txt")
    return git_repository(solution, root, "burst")


# --- the shared parts, private to this run: Redis (PostgreSQL is tests/postgres.py's private_cluster) -------------


def _start_redis(folder: Path) -> str:
    folder.mkdir()
    subprocess.run(
        ["redis-server", "--port", "0", "--unixsocket", str(folder / "redis.sock"), "--dir", str(folder),
         "--appendonly", "yes", "--save", "", "--daemonize", "yes", "--pidfile", str(folder / "redis.pid"),
         "--logfile", str(folder / "redis.log")], check=True, capture_output=True,
    )
    return f"unix://{folder / 'redis.sock'}"


def _stop_redis(folder: Path) -> None:
    subprocess.run(["redis-cli", "-s", str(folder / "redis.sock"), "shutdown", "nosave"], capture_output=True)


# --- the three hosts ----------------------------------------------------------------------------------------------


def _environment(root: Path, data: str, database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("GRADER_")}
    return {
        **env, "GRADER_DATA_DIR": str(root / data), "GRADER_REPORTS_DIR": str(root / "reports"),
        "GRADER_ASSIGNMENTS_DIR": str(root / "assignments"), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
    }


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "--uts", "true"], capture_output=True).returncode == 0


def _start_worker(root: Path, host: str, env: dict[str, str], concurrency: int, own_name: bool) -> subprocess.Popen[bytes]:
    """`grader worker` as one host; with `own_name`, in its own UTS namespace under the host name `host`."""
    grader = [sys.executable, "-m", "grader", "worker", "--concurrency", str(concurrency)]
    command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *grader] if own_name else grader
    log = open(root / f"{host}.log", "wb")  # noqa: SIM115 - closed with the process's end
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_http(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: the web app did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def _token(env: dict[str, str]) -> str:
    grader = [sys.executable, "-m", "grader", "users"]
    subprocess.run([*grader, "create", "bench@example.org", "--role", "admin", "--password", "bench-password"],
                   env=env, check=True, capture_output=True)
    return subprocess.run([*grader, "token", "bench@example.org", "--name", "burst"], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


# --- submitting and polling ---------------------------------------------------------------------------------------


class Pollers:
    """`count` threads, each asking for a random submission's status every `interval` seconds over one connection."""

    def __init__(self, port: int, token: str, ids: list[str], count: int, interval: float) -> None:
        self.port, self.token, self.ids, self.interval = port, token, ids, interval
        self.latencies_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(i,), daemon=True) for i in range(count)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _error(self, what: str) -> None:
        with self._lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def _poll(self, index: int) -> None:
        rng = random.Random(index)
        headers = {"Authorization": f"Bearer {self.token}"}
        connection: http.client.HTTPConnection | None = None
        self._stop.wait(rng.uniform(0, self.interval))  # spread the pollers over one interval
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            started = time.perf_counter()
            try:
                connection.request("GET", f"/api/submissions/{rng.choice(self.ids)}", headers=headers)
                response = connection.getresponse()
                body = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status != 200 or "status" not in json.loads(body):
                    self._error(f"HTTP {response.status}")
                else:
                    with self._lock:
                        self.latencies_ms.append(elapsed)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._error(type(exc).__name__)
                connection.close()
                connection = None
            self._stop.wait(self.interval)


def _submit(port: int, token: str, repository: Path, count: int) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids = []
    body = json.dumps({"assignment": "burst", "repository": str(repository)})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for _ in range(count):
        connection.request("POST", "/api/submissions", body=body, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 202:
            raise SystemExit(f"bench: POST /api/submissions answered {response.status}: {answer}")
        ids.append(answer["id"])
    return ids


# --- the figures --------------------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def kendall_tau(order: list[int]) -> float:
    """Kendall's tau between `order` (arrival ranks, listed in completion order) and 0..n-1: 1 is the same order."""
    n = len(order)
    if n < 2:
        return 1.0
    concordant = sum(1 for i in range(n) for j in range(i + 1, n) if order[i] < order[j])
    pairs = n * (n - 1) // 2
    return (2 * concordant - pairs) / pairs


def order_figures(ids: list[str], records: dict[str, SubmissionRecord]) -> dict[str, Any]:
    """How the order of completion compares with the order of arrival, over the submissions that finished."""
    arrival = {sid: rank for rank, sid in enumerate(ids)}
    done = sorted((r for r in records.values() if r.finished_at), key=lambda r: (r.finished_at, arrival[r.id]))
    order = [arrival[r.id] for r in done]
    displacement = [abs(position - rank) for position, rank in enumerate(order)]
    return {
        "kendall_tau": round(kendall_tau(order), 3),
        "mean_rank_displacement": round(statistics.fmean(displacement), 2) if displacement else 0.0,
        "max_rank_displacement": max(displacement, default=0),
    }


def _outcome(ids: list[str], records: dict[str, SubmissionRecord]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    attempts: dict[str, int] = {}
    hosts: dict[str, int] = {}
    for sid in ids:
        record = records.get(sid)
        status = record.status.value if record else "missing"
        statuses[status] = statuses.get(status, 0) + 1
        if record:
            attempts[str(record.attempts)] = attempts.get(str(record.attempts), 0) + 1
            host = (record.owner or "?").partition("/")[0]
            hosts[host] = hosts.get(host, 0) + 1
    once = sum(1 for sid in ids if (r := records.get(sid)) and r.status.value == "graded" and r.attempts == 1
               and r.score == r.max_score)
    return {"statuses": statuses, "attempts": attempts, "by_host": hosts, "graded_once_full_marks": once,
            "lost": sum(1 for sid in ids if sid not in records),
            "unfinished": sum(1 for sid in ids if sid in records and not records[sid].final)}


def run(submissions: int = SUBMISSIONS, pollers: int = POLLERS, interval: float = POLL_INTERVAL_S,
        concurrency: int = 1, timeout_min: float = 12.0) -> dict[str, Any]:
    """The whole burst; everything it starts (PostgreSQL, Redis, the web app, the workers) is stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="gburst-", dir="/tmp"))
    processes: list[subprocess.Popen[bytes]] = []
    redis_dir, postgres = root / "redis", contextlib.ExitStack()
    try:
        write_assignment(root)
        repository = _solution(root)
        database_url = new_database(postgres.enter_context(private_cluster({"max_connections": 200}, must_start=True)))
        redis_url = _start_redis(redis_dir)
        web_env = _environment(root, "web", database_url, redis_url)
        own_names = _can_unshare()
        token = _token(web_env)  # also migrates the schema, before any worker starts
        port = free_port()
        web_log = open(root / "web.log", "wb")  # noqa: SIM115
        processes.append(subprocess.Popen([sys.executable, "-m", "grader", "serve", "--workers", "0", "--port", str(port)],
                                          env=web_env, stdout=web_log, stderr=subprocess.STDOUT))
        _wait_http(port, 60)
        for host in HOSTS:
            processes.append(_start_worker(root, host, _environment(root, host, database_url, redis_url), concurrency,
                                           own_names))
        time.sleep(3)  # the workers connect and heartbeat before the burst
        store = open_store(Settings().replace(database_url=database_url))
        started = time.monotonic()
        ids = _submit(port, token, repository, submissions)
        submitted_s = time.monotonic() - started
        print(f"  {submissions} submitted through the API in {submitted_s:.1f} s; grading on {len(HOSTS)} hosts "
              f"({'own host names' if own_names else 'one host name: unshare unavailable'})", flush=True)
        poll = Pollers(port, token, ids, pollers, interval)
        poll.start()
        deadline = started + timeout_min * 60
        records: dict[str, SubmissionRecord] = {}
        last_print = 0.0
        while time.monotonic() < deadline:
            records = {sid: r for sid in ids if (r := store.get(sid)) is not None}
            done = sum(1 for r in records.values() if r.final)
            if time.monotonic() - last_print > 30:
                print(f"  {done}/{submissions} done after {time.monotonic() - started:.0f} s", flush=True)
                last_print = time.monotonic()
            if done == submissions:
                break
            if any(p.poll() is not None for p in processes):
                print("  bench: a worker or the web app exited early; see its log under", root, flush=True)
                break
            time.sleep(1)
        wall = time.monotonic() - started
        poll.stop()
        finished = [r.finished_at for r in records.values() if r.final and r.finished_at]
        first_created = min((r.created_at for r in records.values()), default=None)
        grading_s = (max(finished) - first_created).total_seconds() if finished and first_created else wall
        done = sum(1 for r in records.values() if r.final)
        rate = done * 60 / grading_s if grading_s else 0.0
        waits = [(r.started_at - r.created_at).total_seconds() for r in records.values() if r.started_at]
        latencies = poll.latencies_ms
        return {
            "submissions": submissions,
            "hosts": list(HOSTS),
            "own_host_names": own_names,
            "concurrency_per_host": concurrency,
            "submit_s": round(submitted_s, 2),
            **_outcome(ids, records),
            **order_figures(ids, records),
            "wall_s": round(grading_s, 1),
            "grades_per_minute": round(rate, 2),
            "queue_wait_s": {"median": round(statistics.median(waits), 1), "max": round(max(waits), 1)} if waits else {},
            "extrapolated_200_min": round(200 / rate, 1) if rate and submissions < 200 else None,
            "polling": {
                "pollers": pollers, "interval_s": interval, "requests": len(latencies),
                "p50_ms": round(_percentile(latencies, 0.50), 1), "p95_ms": round(_percentile(latencies, 0.95), 1),
                "p99_ms": round(_percentile(latencies, 0.99), 1), "max_ms": round(max(latencies, default=0.0), 1),
                "errors": poll.errors, "target_p95_ms": TARGET_P95_MS,
            },
            "machine": {"cores": os.cpu_count()},
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
        _stop_redis(redis_dir)
        postgres.close()  # stops the cluster and removes its folder
        shutil.rmtree(root, ignore_errors=True)


def print_table(results: dict[str, Any]) -> None:
    n = results["submissions"]
    print(f"burst: {n} tiny submissions, {len(results['hosts'])} worker hosts x {results['concurrency_per_host']} "
          f"worker(s), one Redis, one PostgreSQL ({results['machine']['cores']} cores)")
    print(f"  statuses {results['statuses']}, attempts {results['attempts']}, by host {results['by_host']}")
    print(f"  graded exactly once with full marks: {results['graded_once_full_marks']}/{n}; lost (no record): "
          f"{results['lost']}; not final when the bench stopped waiting: {results['unfinished']}")
    print(f"  completion vs arrival: Kendall tau {results['kendall_tau']:.3f}, mean rank displacement "
          f"{results['mean_rank_displacement']:.2f} (max {results['max_rank_displacement']})")
    wait = results["queue_wait_s"]
    print(f"  wall {results['wall_s']:.1f} s (first arrival to last grade), {results['grades_per_minute']:.1f} grades/min; "
          f"queue wait median {wait.get('median', 0):.1f} s, max {wait.get('max', 0):.1f} s")
    if results["extrapolated_200_min"]:
        print(f"  EXTRAPOLATED, not measured: 200 submissions at this rate would take about "
              f"{results['extrapolated_200_min']:.1f} min")
    p = results["polling"]
    verdict = "under" if p["p95_ms"] < p["target_p95_ms"] else "OVER"
    print(f"  status API, {p['pollers']} pollers each every {p['interval_s']:g} s while grading: {p['requests']} requests, "
          f"p50 {p['p50_ms']:.1f} ms, p95 {p['p95_ms']:.1f} ms ({verdict} the {p['target_p95_ms']:.0f} ms target), "
          f"p99 {p['p99_ms']:.1f} ms, max {p['max_ms']:.1f} ms, errors {sum(p['errors'].values())} {p['errors'] or ''}")


def save(results: dict[str, Any], out: Path) -> None:
    existing = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**existing, "burst": results}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=SUBMISSIONS)
    parser.add_argument("--pollers", type=int, default=POLLERS)
    parser.add_argument("--poll-interval", type=float, default=POLL_INTERVAL_S,
                        help="seconds each poller waits between two requests (a status page's refresh)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes per host")
    parser.add_argument("--timeout-min", type=float, default=12.0, help="stop waiting for grades after this long")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results.json")
    args = parser.parse_args()
    results = run(args.submissions, args.pollers, args.poll_interval, args.concurrency, args.timeout_min)
    save(results, args.out)
    print_table(results)


if __name__ == "__main__":
    main()
