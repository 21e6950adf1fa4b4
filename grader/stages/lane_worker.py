"""A lane's background worker as its hidden tests drive it: start (a new name each time, ready or BootFailed),
stop (SIGTERM, SIGKILL after 10 s), kill (every process at once, its database sessions ended), its output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grader.assignments.model import WorkerSpec
from grader.errors import BootFailed
from grader.sandbox.worker import kill_worker, start_worker, wait_until_ready

if TYPE_CHECKING:
    from grader.stages.lane import Lane

STOP_GRACE_S = 10


class LaneWorker:
    """At most one worker container per lane; its output outlives it until the next start."""

    def __init__(self, lane: Lane, spec: WorkerSpec) -> None:
        self.lane, self.spec = lane, spec
        self.container = ""
        self.starts = 0
        self.ready_s: list[float] = []
        self._last_output = ""

    def start(self) -> dict[str, Any]:
        """A new worker (the one before removed), waited for; its number and readiness time."""
        self.remove()
        self.starts += 1
        lane = self.lane
        self.container = start_worker(lane.sandbox, lane.pod, self.spec.command, self.spec.preload, self.starts)
        try:
            ready_s = wait_until_ready(
                lane.sandbox, self.container, self.spec.ready, self.starts, self.spec.ready_timeout_s, lane.settings,
            )
        except BootFailed as exc:
            tail = " ".join(exc.log_tail.split())[-800:]
            raise BootFailed(exc.reason + (f"; its output ends: {tail}" if tail else "")) from None
        self.ready_s.append(ready_s)
        return {"n": self.starts, "ready_s": ready_s}

    def ensure(self) -> dict[str, Any]:
        """The running worker, or a new one."""
        if self.running():
            return {"n": self.starts, "ready_s": 0.0}
        return self.start()

    def stop(self) -> int | None:
        if not self.container:
            return None
        return self.lane.sandbox.stop(self.container, STOP_GRACE_S)

    def kill(self) -> int:
        """SIGKILL the worker's container; the number of its database sessions then ended."""
        if not self.container:
            return 0
        return kill_worker(self.lane.sandbox, self.lane.pod, self.container, self.starts)

    def running(self) -> bool:
        return bool(self.container) and self.lane.sandbox.state(self.container).running

    def output(self) -> str:
        if not self.container:
            return self._last_output
        return self.lane.sandbox.logs(self.container, self.lane.settings.sandbox.log_bytes)

    def remove(self) -> None:
        if self.container:
            self._last_output = self.output()
            self.lane.sandbox.remove(self.container)
            self.container = ""
