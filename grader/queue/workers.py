"""`grader worker`: N worker processes, each one RQ worker on the one queue, under a small supervisor.

Each worker process runs RQ's SimpleWorker, which grades in the process itself rather than in a
forked horse: the process that holds a lease is then the one that does the work, so its death is the
grading's death, and the watchdog can judge a lease by its owner's PID and start time. Each worker
leads its own process group, so what a killed worker leaves behind (the hidden suite's pytest) can be
killed as a group by the watchdog of another. The supervisor forwards SIGINT and SIGTERM (RQ's warm,
then cold shutdown) and, unless in burst mode, starts a worker again when one dies. A worker whose watchdog refuses
the deployment (SQLite, and another host joined: grader/queue/hosts.py) ends with EXIT_REFUSED after its grading
under way, and the supervisor then stops them all with that code rather than start one again.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from multiprocessing.process import BaseProcess
from types import FrameType

import redis
from rq.registry import ScheduledJobRegistry
from rq.worker import SimpleWorker

from grader.db.engine import open_store
from grader.queue.broker import connect_redis, grading_queue
from grader.queue.jobs import WorkerContext, bind_context
from grader.queue.watchdog import Watchdog, worker_owner
from grader.settings import Settings
from grader.storage import open_storage

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
EXIT_REFUSED = 3
"""A worker process's exit when its deployment is refused; `grader worker` ends with it (the CLI's EXIT_INFRA)."""


def _die_with_supervisor(supervisor: int) -> None:
    """Ask the kernel for SIGTERM (a warm shutdown) when the supervisor dies, so no worker is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:
        os.kill(os.getpid(), signal.SIGTERM)


def _warm_shutdown(_reason: str) -> bool:
    """SIGTERM to this process once RQ's work loop handles it (its warm shutdown: the job under way finishes);
    False before, so that the watchdog asks again at its next sweep rather than the signal be lost."""
    if getattr(signal.getsignal(signal.SIGTERM), "__name__", "") != "request_stop":
        return False
    os.kill(os.getpid(), signal.SIGTERM)
    return True


def _work_pending(connection: redis.Redis) -> bool:
    """Jobs still queued or waiting for a retry's back-off, which a burst worker must not walk away from."""
    queue = grading_queue(connection)
    return queue.count > 0 or ScheduledJobRegistry(queue=queue).count > 0


def run_worker_process(settings: Settings, burst: bool, supervisor: int | None = None) -> None:
    """One worker process: its store, Redis connection, heartbeat and watchdog, then RQ's work loop."""
    os.setpgid(0, 0)
    if supervisor is not None:
        _die_with_supervisor(supervisor)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    connection = connect_redis(settings)
    store = open_store(settings)
    owner = worker_owner()
    storage = open_storage(settings)
    bind_context(WorkerContext(settings=settings, store=store, owner=owner, storage=storage))
    watchdog = Watchdog(settings, store, connection, owner, storage=storage, on_refusal=_warm_shutdown)
    watchdog.sweep()  # before the first job: a burst run after a crash recovers what the crash left
    watchdog.start()
    try:
        while not watchdog.refusal:
            worker = SimpleWorker(
                [grading_queue(connection)], connection=connection,
                name=f"{owner.replace('/', '.').replace(':', '.')}.{uuid.uuid4().hex[:6]}",
            )
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            if not burst or worker._stop_requested or not _work_pending(connection):
                break
            time.sleep(1)
    finally:
        watchdog.stop()
        store.engine.dispose()
    if watchdog.refusal:
        sys.exit(EXIT_REFUSED)


class Supervisor:
    """Starts `concurrency` worker processes and keeps them running; stops them on a signal."""

    def __init__(self, settings: Settings, concurrency: int, burst: bool) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.burst = burst
        self.stopping = False
        self.refused = False
        self._context = multiprocessing.get_context("fork")  # no threads or connections exist yet here
        self.processes: list[BaseProcess] = []

    def _start_one(self) -> BaseProcess:
        process = self._context.Process(
            target=run_worker_process, args=(self.settings, self.burst, os.getpid()), name="grader-worker"
        )
        process.start()
        log.info("worker process %s started", process.pid)
        return process

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    def run(self) -> int:
        """Run until every worker has ended (burst) or until a signal; 0 when all ended cleanly."""
        signal.signal(signal.SIGINT, self._forward)
        signal.signal(signal.SIGTERM, self._forward)
        self.processes = [self._start_one() for _ in range(self.concurrency)]
        restarts = 0
        while any(p.is_alive() for p in self.processes) or (not self.burst and not self.stopping):
            for index, process in enumerate(self.processes):
                if not process.is_alive() and process.exitcode == EXIT_REFUSED and not self.refused:
                    log.error("worker process %s refused this deployment (see its log); stopping every worker", process.pid)
                    self.refused = True
                    self._forward(signal.SIGTERM, None)
                if process.is_alive() or self.burst or self.stopping:
                    continue
                process.join()
                log.warning("worker process %s ended with %s; starting another", process.pid, process.exitcode)
                restarts += 1
                time.sleep(min(1.0 * restarts, 10.0))  # a worker that cannot start must not spin
                if not self.stopping:
                    self.processes[index] = self._start_one()
            time.sleep(0.5)
        for process in self.processes:
            process.join()
        if self.refused or any(p.exitcode == EXIT_REFUSED for p in self.processes):
            return EXIT_REFUSED
        failed = [p.exitcode for p in self.processes if p.exitcode not in (0, None)]
        return 1 if failed and not self.stopping else 0


def run_workers(settings: Settings, concurrency: int, burst: bool) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    return Supervisor(settings, concurrency, burst).run()
