"""A pod's limits are the sum of its containers': what a lane of an assignment with services and a worker holds."""

from __future__ import annotations

from grader.sandbox.limits import container_limits, pod_limits
from grader.settings import Settings


def test_a_pod_with_services_and_a_worker_sums_five_containers():
    settings = Settings(memory="512m", pids=256, cpus=1.0, services_memory="1g")
    plain = pod_limits(settings, services=False, worker=False)
    full = pod_limits(settings, services=True, worker=True)
    assert plain == {"containers": 2, "memory_mb": 128 + 512, "pids": 128 + 256, "cpus": 1.0}
    assert full == {"containers": 5, "memory_mb": 128 + 512 + 1024 + 128 + 512, "pids": 128 + 256 + 512 + 128 + 256, "cpus": 4.0}


def test_the_services_container_is_hardened_like_the_candidates():
    options = container_limits("services", Settings(services_memory="1g"))
    assert options["cap_drop"] == ["ALL"] and options["read_only"] and options["security_opt"] == ["no-new-privileges"]
    assert options["mem_limit"] == "1g" and options["pids_limit"] == 512
