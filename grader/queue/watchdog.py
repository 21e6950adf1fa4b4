"""Each worker's watchdog: gradings of dead workers are graded again within a minute, lost jobs re-sent.

RQ notices an abandoned job only when its registry entry expires, about the job timeout later. So every
worker process, every `watchdog_interval_s`, publishes its own heartbeat and looks at the records in
`running`: the owner (`hostname/pid:start`) of each is checked, on this host by its PID and start time
(exact, immediate), on another host by its heartbeat in Redis (dead after `heartbeat_ttl_s`). For a
dead owner it kills what the dead process left in its process group (the hidden suite's pytest), reaps
the job's containers by label, and hands the record to a fresh RQ job with a compare-and-set on the
lease, so of two watchdogs that saw the same death only one re-enqueues.

It also re-sends queued records whose RQ job is missing (Redis lost it, or the enqueue after
`grader submit` failed): the database is the truth and Redis only carries jobs; and it removes the code kept
for the cohort once past its retention (grader/cohort/place.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta

import docker
import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from grader.assignments.model import assignment_or_none
from grader.cohort.files import sweep_keeping
from grader.cohort.place import expire_snapshots
from grader.cohort.store import CohortStore
from grader.db.store import Store, SubmissionRecord, utcnow
from grader.errors import InfraError
from grader.models import Status, SubmissionRequest
from grader.owner import current_owner, proc_stat, process_alive, split_owner
from grader.queue.broker import enqueue_grading, grading_queue, new_job_id
from grader.queue.hosts import heartbeat_key, refuse_sqlite_across_hosts
from grader.sandbox.docker import connect, remove_submission_resources
from grader.sandbox.reaper import reap
from grader.settings import Settings
from grader.stages.report import infra_report, store_report
from grader.storage import Storage, open_storage, report_folder

log = logging.getLogger(__name__)
_PENDING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def worker_owner() -> str:
    """This process as the owner of a lease, in the one owner format (grader/owner.py)."""
    return current_owner()


class Watchdog:
    """The sweep one worker process runs on a timer; every dependency is passed in."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        connection: redis.Redis,
        owner: str,
        docker_client: Callable[[], docker.DockerClient] | None = None,
        storage: Storage | None = None,
        on_refusal: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage or open_storage(settings)
        self.connection = connection
        self.owner = owner
        self.hostname = owner.rpartition("/")[0]
        self._docker_client = docker_client or (lambda: connect(settings))
        self._on_refusal = on_refusal
        self._refusal_heard = False
        self.refusal: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the sweep in a daemon thread: a SimpleWorker's main thread is busy grading."""
        self._thread = threading.Thread(target=self._loop, name="grader-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.connection.delete(heartbeat_key(self.owner))
        except redis.RedisError:
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.queue.watchdog_interval_s):
            self.sweep()

    def sweep(self) -> None:
        """One pass: heartbeat, the hosts that share Redis, recover gradings of dead owners, re-send lost jobs, expire
        kept code; never raises."""
        for step in (self.beat, self.check_hosts, self.recover_abandoned, self.resend_lost, self.expire_kept_code):
            try:
                step()
            except Exception:  # a Redis or database outage must not end the thread; next pass retries
                log.exception("watchdog: %s failed", step.__name__)

    def expire_kept_code(self) -> int:
        """Kept code past `snapshot_retention_days` goes even when no new grade of its assignment comes; so does the
        code a crashed grading of this host left on its way into storage."""
        left = sweep_keeping(self.settings.paths.keeping_dir, self.settings.timeouts.job_limit_s)
        if left:
            log.warning("watchdog: removed code that crashed gradings left on the way to storage: %s", ", ".join(left))
        return expire_snapshots(CohortStore(self.store.engine), self.settings, self.storage)

    def beat(self) -> None:
        self.connection.set(heartbeat_key(self.owner), "1", ex=self.settings.queue.heartbeat_ttl_s)

    def check_hosts(self) -> None:
        """A host that joined this Redis after start-up makes a SQLite database wrong here too: say so once, and ask
        the worker to stop taking jobs (`on_refusal`, asked again each sweep until it answers that it heard); the
        grading under way finishes."""
        if self.refusal is None:
            try:
                refuse_sqlite_across_hosts(self.settings, self.connection, self.hostname)
                return
            except InfraError as exc:
                self.refusal = exc.reason
                log.error("watchdog: %s; this worker stops taking jobs", exc.reason)
        if self._on_refusal is not None and not self._refusal_heard:
            self._refusal_heard = self._on_refusal(self.refusal)

    def owner_dead(self, owner: str | None) -> bool:
        if not owner:
            return True
        host, local = split_owner(owner)
        if host == self.hostname:
            return not process_alive(local)
        return not self.connection.exists(heartbeat_key(owner))

    def recover_abandoned(self) -> list[str]:
        """Re-enqueue every running record whose owner is dead; return their ids."""
        recovered = []
        for record in self.store.running():
            if record.owner != self.owner and self.owner_dead(record.owner):
                if self._recover(record):
                    recovered.append(record.id)
        return recovered

    def _recover(self, record: SubmissionRecord) -> bool:
        """Take the record from the dead owner first (one watchdog wins), then clean up, then enqueue.

        In this order no other watchdog destroys the resources of the new grading (same job label), and
        the new grading cannot start before the old one's leftovers are gone.
        """
        assert record.lease_token is not None
        stage = record.stage.value if record.stage else "start"
        error = f"worker {record.owner} died during {stage} (attempt {record.attempts})"
        job_id = new_job_id(record.id)
        give_up = record.attempts >= self.settings.queue.max_attempts
        if give_up:
            won = self._give_up(record, f"{error}; gave up after {record.attempts} attempts")
        else:
            won = self.store.requeue(record.id, record.lease_token, job_id, error)
        if not won:
            return False  # another watchdog was first
        host, local = split_owner(record.owner or "")
        if host == self.hostname:
            kill_orphans(local)
            self._reap(record.id)
        if give_up:
            log.error("watchdog: %s: %s; gave up", record.id, error)
        else:
            log.warning("watchdog: %s: %s; enqueued again as %s", record.id, error, job_id)
            enqueue_grading(grading_queue(self.connection), record.id, job_id, self.settings)
        return True

    def _give_up(self, record: SubmissionRecord, error: str) -> bool:
        """The last ending of a submission whose gradings keep dying: infra_error, with a report that says so."""
        assert record.lease_token is not None
        request = SubmissionRequest(id=record.id, source=record.source, ref=record.ref, assignment=record.assignment)
        report = infra_report(request, assignment_or_none(self.settings.paths.assignments_dir, record.assignment), error)
        folder = report_folder(record.id)

        def publish() -> None:
            store_report(report, self.storage, folder, pdf=self.settings.report.pdf)

        return self.store.finish(
            record.id, record.lease_token, status=Status.infra_error, score=0.0, max_score=report.max_score,
            report_path=f"{folder}/report.json", error=error, publish=publish,
        )

    def _reap(self, job_id: str) -> None:
        """Remove the dead grading's resources (known dead, even as a zombie), then anything else abandoned."""
        try:
            client = self._docker_client()
            removed = {job_id: remove_submission_resources(client, job_id), **reap(client)}
        except Exception as exc:  # the next grading's own clean-up and `grader reap` remain
            log.warning("watchdog: reaping failed: %s", exc)
            return
        for job, resources in removed.items():
            if resources:
                log.warning("watchdog: reaped %s: %s", job, ", ".join(resources))

    def resend_lost(self) -> list[str]:
        """Enqueue again the queued records whose RQ job is gone, failed or stuck; return their ids."""
        cutoff = utcnow() - timedelta(seconds=self.settings.queue.requeue_grace_s)
        resent = []
        for record in self.store.stale_queued(cutoff):
            if record.job_id and self._job_pending(record.job_id):
                continue
            job_id = new_job_id(record.id)
            if self.store.replace_job(record.id, record.job_id, job_id):
                log.warning("watchdog: %s: job %s is lost; enqueued again as %s", record.id, record.job_id, job_id)
                enqueue_grading(grading_queue(self.connection), record.id, job_id, self.settings)
                resent.append(record.id)
        return resent

    def _job_pending(self, job_id: str) -> bool:
        try:
            status = Job.fetch(job_id, connection=self.connection).get_status(refresh=False)
        except NoSuchJobError:
            return False
        return status in _PENDING


def kill_orphans(local_owner: str) -> None:
    """SIGKILL the process group a dead worker led (each worker leads its own, see grader.queue.workers).

    A process group outlives its leader while members remain, and its number cannot be reused by a
    new process until the group is empty. A live process with that PID that is not the dead owner's
    zombie is a new one, so the group is not ours and is left alone.
    """
    pid_text, _, start = local_owner.partition(":")
    if not pid_text.isdigit():
        return
    stat = proc_stat(pid_text)
    if stat is not None and not (stat[0] == "Z" and stat[1] == start):
        return
    try:
        os.killpg(int(pid_text), signal.SIGKILL)
        log.warning("watchdog: killed what dead worker %s left in its process group", local_owner)
    except (ProcessLookupError, PermissionError):
        pass
