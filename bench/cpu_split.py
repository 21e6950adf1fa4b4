"""Where a grade's CPU goes: the submission's containers (read from their cgroups), the grader's own processes, the
Docker engine, and the rest of the machine (busy CPU from bench/common.py minus those).

A container's cgroup disappears when the container is removed, so a background thread reads every container's
usage every `INTERVAL_S` while the grade runs and keeps the last value; the CPU a container spends after its last
read (at most one interval's worth) is missed, and so is a container that lives less than one interval. Which
containers are the submission's is read once per container from its labels (grader.sandbox.docker's
SUBMISSION_LABEL); new containers without that label (the classic builder's intermediate containers) are counted
apart. The grader's share is this process, its reaped children and its live ones (the fork server, which reaps the
hidden suite's pytest processes); the thread's own CPU is measured and taken out of it.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from common import busy_cpu_s

from grader.sandbox.docker import SUBMISSION_LABEL

INTERVAL_S = 0.05
ENGINE = ("dockerd", "containerd")
SHIM = "containerd-shim"
_HEX = set("0123456789abcdef")
_TICK = os.sysconf("SC_CLK_TCK")


def _read_ns(path: Path) -> float | None:
    try:
        return int(path.read_text()) / 1e9
    except (OSError, ValueError):
        return None


def _read_usec(path: Path) -> float | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    except (OSError, ValueError):
        return None
    return None


CGROUP_LAYOUTS: tuple[tuple[str, Path, str, str, Callable[[Path, str], float | None]], ...] = (
    # (name, folder, prefix, suffix, reader): a container's cgroup is folder/<prefix><id><suffix>
    ("v1 cpuacct", Path("/sys/fs/cgroup/cpuacct/docker"), "", "", lambda d, n: _read_ns(d / n / "cpuacct.usage")),
    ("v2 systemd", Path("/sys/fs/cgroup/system.slice"), "docker-", ".scope", lambda d, n: _read_usec(d / n / "cpu.stat")),
    ("v2 cgroupfs", Path("/sys/fs/cgroup/docker"), "", "", lambda d, n: _read_usec(d / n / "cpu.stat")),
    ("v2 hybrid", Path("/sys/fs/cgroup/unified/docker"), "", "", lambda d, n: _read_usec(d / n / "cpu.stat")),
)


def cgroup_layout() -> tuple[str, Path, str, str, Callable[[Path, str], float | None]]:
    """The first layout of this machine whose folder exists (cgroup v1's cpuacct, then v2's)."""
    for layout in CGROUP_LAYOUTS:
        if layout[1].is_dir():
            return layout
    raise SystemExit("bench: no Docker cgroup folder found under /sys/fs/cgroup (is the engine running here?)")


def _proc_cpu(pid: str) -> float | None:
    """utime + stime of one process (its own, not its children's: a shim waits for the container's processes)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def _engine_pids() -> list[str]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ENGINE or comm.startswith(SHIM):
                pids.append(entry)
    return pids


def _live_children_cpu() -> dict[str, float]:
    """This process's live children, each with its own CPU and that of the descendants it has reaped: the grader's
    fork server lives across grades (grader/sandbox/forkserver.py) and reaps the hidden suite's pytest processes,
    so their CPU is in its counters, not yet in this process's RUSAGE_CHILDREN."""
    me = str(os.getpid())
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 14 and fields[1] == me:
            found[entry] = sum(int(v) for v in fields[11:15]) / _TICK
    return found


def _own_cpu() -> float:
    """This process (all threads) and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """`with CpuMeter(client, submission_id) as meter:` around one grade in this process; then `meter.split()`."""

    def __init__(self, client: docker.DockerClient, submission_id: str) -> None:
        self.client = client
        self.submission_id = submission_id
        self.layout = cgroup_layout()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._baseline: dict[str, float] = {}  # containers that existed before the grade
        self._last: dict[str, float] = {}
        self._mine: dict[str, bool] = {}
        self._engine_start: dict[str, float] = {}
        self._engine_last: dict[str, float] = {}
        self.thread_cpu_s = 0.0
        self._started_engine = False
        self._children: dict[str, float] = {}
        self._live = 0.0

    def _containers(self) -> dict[str, float]:
        _name, folder, prefix, suffix, reader = self.layout
        usage = {}
        try:
            entries = os.listdir(folder)
        except OSError:
            return usage
        for entry in entries:
            if entry.startswith(prefix) and entry.endswith(suffix):
                cid = entry[len(prefix):len(entry) - len(suffix)]
                if len(cid) == 64 and set(cid) <= _HEX:
                    value = reader(folder, entry)
                    if value is not None:
                        usage[cid] = value
        return usage

    def _is_mine(self, cid: str) -> bool:
        if cid not in self._mine:
            try:
                labels = self.client.api.inspect_container(cid)["Config"].get("Labels") or {}
            except docker.errors.APIError:
                labels = {}
            self._mine[cid] = labels.get(SUBMISSION_LABEL) == self.submission_id
        return self._mine[cid]

    def _sample_engine(self, rescan: bool) -> None:
        for pid in _engine_pids() if rescan else list(self._engine_last):
            value = _proc_cpu(pid)
            if value is None:
                continue
            if pid not in self._engine_start:  # a shim that started during the grade counts from zero
                self._engine_start[pid] = 0.0 if self._started_engine else value
            self._engine_last[pid] = value

    def _sample(self, rescan: bool) -> None:
        for cid, value in self._containers().items():
            if cid not in self._baseline and cid not in self._last:
                self._is_mine(cid)
            self._last[cid] = value
        self._sample_engine(rescan)

    def _run(self) -> None:
        started = time.thread_time()
        ticks = 0
        while not self._stop.wait(INTERVAL_S):
            ticks += 1
            self._sample(rescan=ticks % 10 == 0)
        self._sample(rescan=True)
        self.thread_cpu_s = time.thread_time() - started

    def __enter__(self) -> CpuMeter:
        self._baseline = self._containers()
        self._last = dict(self._baseline)
        self._sample_engine(rescan=True)
        self._started_engine = True
        self._busy = busy_cpu_s()
        self._own = _own_cpu()
        self._children = _live_children_cpu()
        self._wall = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._busy = busy_cpu_s() - self._busy
        children = _live_children_cpu()
        self._own = _own_cpu() - self._own
        self._live = sum(value - self._children.get(pid, 0.0) for pid, value in children.items())
        self._wall = time.monotonic() - self._wall

    def split(self) -> dict[str, Any]:
        """CPU seconds of the grade by where they were spent; `rest` is the machine's busy CPU minus the others."""
        containers = other = 0.0
        for cid, value in self._last.items():
            spent = value - self._baseline.get(cid, 0.0)
            if cid in self._baseline or not self._mine.get(cid, False):
                other += spent
            else:
                containers += spent
        engine = sum(self._engine_last[pid] - self._engine_start.get(pid, 0.0) for pid in self._engine_last)
        grader = self._own + self._live - self.thread_cpu_s
        counted = containers + other + grader + engine + self.thread_cpu_s
        return {
            "submission_containers_s": round(containers, 2),
            "submission_container_count": sum(1 for cid, mine in self._mine.items() if mine),
            "other_containers_s": round(other, 2),
            "grader_s": round(grader, 2),
            "engine_s": round(engine, 2),
            "meter_s": round(self.thread_cpu_s, 2),
            "rest_s": round(self._busy - counted, 2),
            "busy_s": round(self._busy, 2),
            "wall_s": round(self._wall, 2),
            "cgroups": self.layout[0],
        }


SPLIT_KEYS = ("submission_containers_s", "grader_s", "engine_s", "other_containers_s", "meter_s", "rest_s", "busy_s")


def summarize(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each figure over the grades, and the grades themselves."""
    import statistics

    return {
        **{key: round(statistics.median(s[key] for s in splits), 2) for key in SPLIT_KEYS},
        "cgroups": splits[0]["cgroups"] if splits else "",
        "grades": splits,
    }


def print_row(summary: dict[str, Any]) -> None:
    busy = summary["busy_s"] or 1.0
    parts = [
        ("containers", "submission_containers_s"), ("grader", "grader_s"), ("engine", "engine_s"),
        ("other containers", "other_containers_s"), ("meter", "meter_s"), ("rest", "rest_s"),
    ]
    text = ", ".join(f"{label} {summary[key]:.1f} s ({100 * summary[key] / busy:.0f}%)" for label, key in parts)
    print(f"CPU split of a warm grade (median of {len(summary['grades'])}; machine busy {summary['busy_s']:.1f} s): {text}")
