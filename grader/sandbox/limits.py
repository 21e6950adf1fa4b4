"""The limits every container that runs candidate code gets, in one place."""

from __future__ import annotations

from typing import Any

from docker.types import LogConfig, Ulimit

from grader.settings import Settings


def _bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    size = size.strip().lower()
    return int(float(size[:-1]) * units[size[-1]]) if size[-1] in units else int(size)


def hardening(settings: Settings, *, read_only: bool = True, tmp_size: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `containers.create`: no privileges, bounded memory, processes, CPU, logs, files."""
    options: dict[str, Any] = {
        "mem_limit": settings.sandbox.memory,
        "memswap_limit": settings.sandbox.memory,
        "pids_limit": settings.sandbox.pids,
        "nano_cpus": int(settings.sandbox.cpus * 1e9),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "read_only": read_only,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmp_size or settings.sandbox.data_size}"},
        "ulimits": [
            Ulimit(name="nofile", soft=1024, hard=1024),
            Ulimit(name="fsize", soft=_bytes(settings.sandbox.data_size), hard=_bytes(settings.sandbox.data_size)),
        ],
        "log_config": LogConfig(
            type="json-file", config={"max-size": settings.sandbox.engine_log_max_size, "max-file": "1"}
        ),
    }
    if settings.sandbox.container_runtime:
        options["runtime"] = settings.sandbox.container_runtime
    return options


_RELAY_MEMORY, _RELAY_PIDS = "128m", 128
_RELAY = {
    "mem_limit": _RELAY_MEMORY, "pids_limit": _RELAY_PIDS, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
    "read_only": True,
}


def container_limits(kind: str, settings: Settings) -> dict[str, Any]:
    """The hardening of one kind of container: the candidate's app, a dependency build, our relay, or our services."""
    if kind == "relay":
        return dict(_RELAY)
    if kind == "services":
        options = hardening(settings, tmp_size=settings.sandbox.services_tmp_size)
        memory = settings.sandbox.services_memory
        options.update(mem_limit=memory, memswap_limit=memory, pids_limit=512, nano_cpus=int(2e9))
        options["ulimits"] = [Ulimit(name="nofile", soft=4096, hard=4096)]
        return options
    return hardening(settings, read_only=kind != "build")


def pod_limits(settings: Settings, *, services: bool, worker: bool) -> dict[str, float]:
    """A lane's pod at most, as the sum of its containers' limits: the relay, the app, and our services (with the
    grader's forward to PostgreSQL) and the candidate's worker when the assignment has them."""
    relay_mb, relay_pids = _bytes(_RELAY_MEMORY) // 2**20, _RELAY_PIDS
    app_mb = _bytes(settings.sandbox.memory) // 2**20
    parts = [(relay_mb, relay_pids, 0.0), (app_mb, settings.sandbox.pids, settings.sandbox.cpus)]
    if services:
        parts += [(_bytes(settings.sandbox.services_memory) // 2**20, 512, 2.0), (relay_mb, relay_pids, 0.0)]
    if worker:
        parts.append((app_mb, settings.sandbox.pids, settings.sandbox.cpus))
    return {
        "containers": len(parts), "memory_mb": sum(p[0] for p in parts), "pids": sum(p[1] for p in parts),
        "cpus": sum(p[2] for p in parts),
    }
