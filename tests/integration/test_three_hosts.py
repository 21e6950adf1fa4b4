"""A dead host: three hosts simulated on this machine, one Redis, one PostgreSQL, one store of reports.

Two worker hosts (`grader worker`) and a web host (`grader serve --workers 0`), each in its own UTS namespace (its own
`socket.gethostname()`, so owners read `host-a/pid:start`) with its own data directory, share a real redis-server, a
private PostgreSQL cluster and the storage: a moto S3 server on loopback, or one folder all three mount as their
`storage.local_root` (as NFS would be). Host A is killed mid-grade: every process of its namespace gets SIGKILL at
once, and its job's containers are removed as its dying engine would take them. Host B's watchdog sees host A's
heartbeat expire and regrades the job; every submission ends graded once, its code kept in the shared store, and
the web host serves every report. Then host A comes back and regrades one of host B's: the new report names the
grade it replaced, on host B, and finds that only the host differs (the same base image content).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
import redis

from grader.db.engine import open_store
from grader.db.store import Store, SubmissionRecord
from grader.models import Stage, Status
from grader.owner import proc_stat
from grader.queue.broker import grading_queue
from grader.queue.hosts import other_hosts
from grader.sandbox.docker import OWNER_LABEL, SUBMISSION_LABEL, remove_submission_resources
from grader.settings import Settings
from grader.storage import open_storage
from tests.conftest import REFERENCE
from tests.integration.conftest import leftovers, s3_storage_fields, wait_for
from tests.loopback import free_port
from tests.postgres import new_database

pytestmark = [pytest.mark.docker, pytest.mark.slow]

GRADER = Path(sys.executable).parent / "grader"
ADMIN = "ada@example.com"
SUBMISSIONS = 3


def _uts(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/uts")
    except OSError:
        return None


class Host:
    """One simulated machine: a command in a UTS namespace of its own, with its own host name and data directory."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name, self.folder = name, folder
        self.data_dir = folder / "var"
        self.env = {**env, "GRADER_DATA_DIR": str(self.data_dir)}
        self.env.setdefault("GRADER_REPORTS_DIR", str(folder / "reports"))
        self.process: subprocess.Popen[bytes] | None = None
        self.namespace: str | None = None

    def start(self, *command: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "host.log", "ab")
        script = f"hostname {self.name} && exec {shlex.join([str(GRADER), *command])}"
        self.process = subprocess.Popen(["unshare", "--uts", "sh", "-c", script], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        ours = _uts("self")
        wait_for(lambda: _uts(self.pid) not in (None, ours), 10, f"{self.name} to enter its own namespace")
        self.namespace = _uts(self.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def processes(self) -> list[int]:
        """Every live process of this host: the namespace holds them all, whatever session or group they lead
        (the hidden suite's fork server and the review run in sessions of their own)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _uts(entry.name) == self.namespace:
                stat = proc_stat(entry.name)
                if stat is not None and stat[0] not in ("Z", "X"):
                    found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """The host dies: SIGKILL to every process of it, until none is left (none can react to another's death)."""
        if self.namespace is None:
            return
        deadline = time.monotonic() + 20
        while members := self.processes():
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            assert time.monotonic() < deadline, f"{self.name}: {members} survive SIGKILL"
            time.sleep(0.05)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """A clean stop (SIGTERM: finish, then go), then whatever is left is killed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def log(self) -> str:
        path = self.folder / "host.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(params=["s3", "filesystem"])
def storage_env(request: pytest.FixtureRequest, short_tmp: Path) -> dict[str, str]:
    """The storage every host is given: one S3 bucket, or one shared folder as every host's local root."""
    if request.param == "filesystem":
        return {"GRADER_STORAGE__BACKEND": "local", "GRADER_STORAGE__LOCAL_ROOT": str(short_tmp / "shared")}
    fields = s3_storage_fields(request.getfixturevalue("s3_url"), f"three-hosts-{uuid.uuid4().hex[:8]}", prefix="grader/")
    return {f"GRADER_STORAGE__{name.upper()}": value for name, value in fields.items()}



class Api:
    """The web host's JSON API, with a bearer token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True  # 401 without a token: the app is up
    except OSError:
        return False
    return True


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(GRADER), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _remove_dead_host_resources(engine: docker.DockerClient, submission_id: str, host: str) -> list[str]:
    """What the dead host's engine took with it: its resources of the job (owner `host/...`), none of another's."""
    selector = {"label": f"{SUBMISSION_LABEL}={submission_id}"}

    def its(resource: Any) -> bool:
        return str((resource.attrs.get("Labels") or resource.attrs.get("Config", {}).get("Labels") or {})
                   .get(OWNER_LABEL, "")).startswith(f"{host}/")

    removed = []
    for container in engine.containers.list(all=True, filters=selector):
        if container.labels.get(OWNER_LABEL, "").startswith(f"{host}/"):
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")
    for network in engine.networks.list(filters=selector):
        if its(network):
            network.remove()
            removed.append(f"network {network.name}")
    for volume in engine.volumes.list(filters=selector):
        if its(volume):
            volume.remove(force=True)
            removed.append(f"volume {volume.name}")
    for image in engine.images.list(filters=selector):
        if image.labels.get(OWNER_LABEL, "").startswith(f"{host}/"):
            engine.images.remove(image.id, force=True)
            removed.append(f"image {image.short_id}")
    return removed


def _reports_on_disk(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("report.json")]


def _kept_on_disk(*folders: Path) -> list[Path]:
    """Kept code in a host's own data directory, or left on its way to the store."""
    return [path for folder in folders for area in ("snapshots", "keeping") for path in (folder / "var" / area).glob("*")]


def test_a_dead_worker_host_loses_nothing(storage_env, postgres_host, redis_server, short_tmp, git_repo, engine,
                                          graded_ids, record_property):
    """Host A is killed mid-grade: host B regrades its job, every submission is graded once with 100/100, the web
    host serves every report through the API (from S3, none on its disk), and no container of the jobs is left."""
    started = time.monotonic()
    port = free_port()
    common = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "REDIS_URL", "DATABASE_URL"))}
    common.update(
        REDIS_URL=redis_server.url, DATABASE_URL=new_database(postgres_host), GRADER_ALLOW_LOCAL_SOURCES="true",
        GRADER_HEARTBEAT_TTL_S="4", GRADER_WATCHDOG_INTERVAL_S="1", GRADER_WEB__SECRET_KEY="three-hosts-secret",
        GRADER_LANE_SLOTS="1",  # the two worker hosts share this machine's 2 cores: one lane each at a time
        **storage_env,
    )
    hosts = {name: Host(name, short_tmp / name, common) for name in ("host-a", "host-b", "web")}
    a, b, web = hosts["host-a"], hosts["host-b"], hosts["web"]
    observer = Settings(data_dir=short_tmp / "observer", reports_dir=Path(web.env["GRADER_REPORTS_DIR"]),
                        database_url=common["DATABASE_URL"], redis_url=redis_server.url,
                        storage={k.removeprefix("GRADER_STORAGE__").lower(): v for k, v in storage_env.items()
                                 if k.startswith("GRADER_STORAGE__")})
    connection = redis.Redis(unix_socket_path=str(redis_server.socket))
    store: Store | None = None
    ids: list[str] = []
    try:
        _cli(web.env, "users", "create", ADMIN, "--role", "admin", "--password", "three-hosts-pw")
        api = Api(f"http://127.0.0.1:{port}", _cli(web.env, "users", "token", ADMIN, "--name", "three-hosts"))
        store = open_store(observer)
        web.start("serve", "--workers", "0", "--host", "127.0.0.1", "--port", str(port), "--web-workers", "1")
        a.start("worker", "--concurrency", "1")
        b.start("worker", "--concurrency", "1")
        wait_for(lambda: _answers(f"{api.base}/api/submissions/s-0"), 60, f"the web host\n{web.log()}")
        wait_for(lambda: other_hosts(connection, "web") == {"host-a", "host-b"}, 60,
                 f"both worker hosts' heartbeats\n{a.log()}\n{b.log()}")

        repo = git_repo(REFERENCE)
        for _ in range(SUBMISSIONS):
            code, body = api.call("POST", "/api/submissions", {"assignment": "flask-notes", "repository": str(repo)})
            assert code == 202, body
            ids.append(body["id"])
        graded_ids.extend(ids)

        def records() -> list[SubmissionRecord]:
            assert store is not None
            return [record for sid in ids if (record := store.get(sid)) is not None]

        def held_by_a() -> SubmissionRecord | None:
            return next((r for r in records() if r.status is Status.running and r.stage is Stage.suite
                         and (r.owner or "").startswith("host-a/")), None)

        wait_for(held_by_a, 180, f"host A to run a hidden suite\n{a.log()[-3000:]}")
        doomed = held_by_a()
        assert doomed is not None
        code, shown = api.call("GET", f"/api/submissions/{doomed.id}")
        assert code == 200 and shown["status"] == "running", shown
        a.kill()
        killed_at = time.monotonic()
        removed = _remove_dead_host_resources(engine, doomed.id, "host-a")
        assert any(item.startswith("container") for item in removed), "host A's engine held the grading's pods"
        assert a.processes() == []

        def finished() -> bool:
            return all(r.final for r in records()) and len(records()) == SUBMISSIONS

        wait_for(finished, 300, f"every submission to be graded\n{b.log()[-6000:]}")
        regraded_after = time.monotonic() - killed_at
        for record in records():
            assert (record.status, record.score, record.max_score) == (Status.graded, 100, 100), record
            assert (record.owner or "").startswith("host-b/"), record
            assert record.attempts == (2 if record.id == doomed.id else 1), record
        killed = next(record for record in records() if record.id == doomed.id)
        assert f"worker {doomed.owner} died during suite" in (killed.last_error or ""), killed
        assert f"worker {doomed.owner} died during suite" in b.log()
        assert grading_queue(connection).count == 0

        storage = open_storage(observer)
        for sid in ids:
            code, report = api.call("GET", f"/api/submissions/{sid}/report")
            assert code == 200, report
            assert (report["id"], report["status"], report["score"], report["max_score"]) == (sid, "graded", 100, 100)
            assert report["provenance"]["host"] == "host-b" and report["provenance"]["base_image_digest"], report
            assert report["earlier"] is None, "host A never published the killed grading: nothing was replaced"
            assert storage.exists(f"reports/{sid}/report.json")
            assert "notes_app/auth.py" in storage.list(f"snapshots/{sid}"), "its code kept where every host reads it"
        if storage_env["GRADER_STORAGE__BACKEND"] == "s3":
            assert _reports_on_disk(*(host.folder for host in hosts.values())) == [], "with S3 no report is on a disk"
        else:
            assert sorted(p.parent.name for p in _reports_on_disk(short_tmp / "shared")) == sorted(ids)
            assert _reports_on_disk(*(host.folder for host in hosts.values())) == []
        assert _kept_on_disk(*(host.folder for host in hosts.values())) == [], "no host keeps code of its own"

        b.stop()
        a.start("worker", "--concurrency", "1")  # host A is back; host B is gone: the regrade is A's
        first = api.call("GET", f"/api/submissions/{ids[0]}/report")[1]
        code, queued = api.call("POST", f"/api/submissions/{ids[0]}/regrade")
        assert code == 202, queued
        wait_for(lambda: (r := store.get(ids[0])) is not None and r.final and (r.owner or "").startswith("host-a/"),
                 180, f"host A to regrade {ids[0]}\n{a.log()[-3000:]}")
        code, regraded = api.call("GET", f"/api/submissions/{ids[0]}/report")
        assert code == 200 and regraded["provenance"]["host"] == "host-a", regraded
        earlier = regraded["earlier"]
        assert (earlier["host"], earlier["score"], earlier["graded_at"][:19]) == ("host-b", 100, first["created_at"][:19])
        assert earlier["differences"] == {"host": ["host-b", "host-a"]} and earlier["unknown"] == [], earlier
        assert regraded["provenance"]["base_image_digest"] == first["provenance"]["base_image_digest"]
        a.stop()
        assert leftovers(engine, ids) == []
        elapsed = time.monotonic() - started
        record_property("wall_s", round(elapsed, 1))
        print(f"\n{storage_env['GRADER_STORAGE__BACKEND']}: {SUBMISSIONS} submissions, host A killed, all graded "
              f"{regraded_after:.1f} s after the kill; {elapsed:.1f} s in all")
    finally:
        for host in hosts.values():
            host.stop()
        for sid in ids:  # a failed run must not leave its pods on the engine (a passed one was checked above)
            remove_submission_resources(engine, sid)
        if store is not None:
            store.engine.dispose()
        connection.close()
