"""The reaper: removes containers, volumes, networks and images of jobs that no live process owns.

Every resource a job creates carries, besides the job's id, its owner: the grading process's PID and
start time on this host. A job killed by its timeout, or a worker that died, leaves resources whose
owner is gone; the next reaper run (at the start of every grade, or `grader reap`) removes them.
"""

from __future__ import annotations

import docker

from grader.owner import owner_alive
from grader.sandbox.docker import OWNER_LABEL, SUBMISSION_LABEL, remove_submission_resources


def _labels(resource: object) -> dict[str, str]:
    attrs = getattr(resource, "attrs", {})
    return attrs.get("Labels") or attrs.get("Config", {}).get("Labels") or {}


def abandoned_jobs(client: docker.DockerClient) -> set[str]:
    """Jobs with at least one labelled resource whose owner process is gone."""
    selector = {"label": SUBMISSION_LABEL}
    resources = [
        *client.containers.list(all=True, filters=selector),
        *client.volumes.list(filters=selector),
        *client.networks.list(filters=selector),
        *client.images.list(filters=selector),
    ]
    owners: dict[str, set[str]] = {}
    for resource in resources:
        labels = _labels(resource)
        if labels.get(SUBMISSION_LABEL):
            owners.setdefault(labels[SUBMISSION_LABEL], set()).add(labels.get(OWNER_LABEL, ""))
    return {job for job, found in owners.items() if not any(owner_alive(owner) for owner in found)}


def reap(client: docker.DockerClient) -> dict[str, list[str]]:
    """Remove the resources of every abandoned job; return what went, by job."""
    removed = {}
    for submission_id in sorted(abandoned_jobs(client)):
        gone = remove_submission_resources(client, submission_id)
        if gone:
            removed[submission_id] = gone
    return removed
