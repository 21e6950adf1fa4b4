"""Who owns a lease or a Docker resource: one format, `host/pid:start-time`, for workers and containers alike.

The start time (clock ticks since boot, from /proc) makes a reused PID different from the owner; the host
says whose /proc can judge it. A zombie is dead: where PID 1 reaps no orphans (as on this kind of machine) a
killed worker stays one. Labels written before the host was part of the format (`pid:start`) are local.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def proc_stat(pid: str) -> tuple[str, str] | None:
    """(state, start time) of a process, from /proc/<pid>/stat; None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return fields[0], fields[19]


def current_owner() -> str:
    """This process: `host/pid:start-time`."""
    pid = str(os.getpid())
    stat = proc_stat(pid)
    return f"{socket.gethostname()}/{pid}:{stat[1] if stat else ''}"


def split_owner(owner: str) -> tuple[str, str]:
    """(host, `pid:start`); the host is this one for labels of the old, local format."""
    host, _, local = owner.rpartition("/")
    return host or socket.gethostname(), local


def process_alive(local: str) -> bool:
    """Whether the process `pid:start` runs on this host (a zombie does not)."""
    pid, _, start = local.partition(":")
    stat = proc_stat(pid) if pid.isdigit() else None
    return stat is not None and start != "" and stat[1] == start and stat[0] not in ("Z", "X")


def owner_alive(owner: str) -> bool:
    """Whether the owner runs; one on another host is taken as alive here (its own host's reaper judges it)."""
    host, local = split_owner(owner)
    return host != socket.gethostname() or process_alive(local)
