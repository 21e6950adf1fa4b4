"""Where the time of a grade goes: cold and warm grades of the flask-notes reference, the floor, throughput.

Run with `make bench` (not part of `make test`); figures are printed and written to bench/results.json.
`--repeat` and `--submissions` shorten a run; the issue's figures use the defaults (5 and 10).
The cohort's figures (bench/cohort.py: what placing a grade among 200 stored ones costs, no Docker) come last, under
"cohort"; `--only-cohort` runs only them and keeps the file's other keys (`make bench BENCH_ARGS=--only-cohort`).
A warm flask-jobs grade (bench/jobs.py: lane by lane, services and worker readiness) comes before them, under
"flask_jobs"; `--only-jobs` runs only it. The warm grades also split their CPU (bench/cpu_split.py: the submission's
containers from their cgroups, the grader's own processes, the engine, the rest), under "cpu_split";
`--only-cpu-split` runs only a few warm grades for it. `--only-burst` runs bench/burst.py (a burst of tiny submissions
through two worker hosts, the status API under 50 pollers), under "burst"; it is not part of a full run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
from common import busy_cpu_s, git_repository
from cpu_split import CpuMeter, print_row, summarize

from grader import __version__
from grader.models import GradeReport, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.docker import connect
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.report import write_report

REFERENCE = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions" / "reference"
STAGES = ("intake_s", "build_s", "boot_s", "tests_s", "report_s", "total_s")
BESIDE = ("review_s", "candidate_tests_s", "wait_s")
"""What runs beside the critical path (grader/stages/beside.py): its own time, and the time the grade waited for it."""


def _repository(root: Path, cold: bool) -> Path:
    """A git repository of the reference; `cold` makes its requirements unique, so nothing is cached."""

    def uncached(repo: Path) -> None:
        with open(repo / "requirements.txt", "a") as handle:
            # a comment no longer changes the layer's key (the normalized text does); a requirement whose marker
            # is false does, and installs nothing
            handle.write(f"bench-cold-{uuid.uuid4().hex}==1.0; python_version < '3'\n")

    return git_repository(REFERENCE, root, "ref", uncached if cold else None)


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def grade_series(
    settings: Settings, root: Path, cold: bool, repeat: int, reports: list[GradeReport] | None = None,
    splits: list[dict[str, Any]] | None = None, client: docker.DockerClient | None = None,
) -> list[dict[str, float]]:
    """Grades of the reference; each entry has the stage timings and `cpu_s`, the machine's busy CPU seconds.
    With `splits` (and the engine's `client`), each grade's CPU split (bench/cpu_split.py) is appended to it."""
    timings = []
    for _ in range(repeat):
        request = SubmissionRequest(id=new_submission_id(), source=str(_repository(root, cold)), assignment="flask-notes")
        busy = busy_cpu_s()
        if splits is not None and client is not None:
            with CpuMeter(client, request.id) as meter:
                report = grade_submission(request, settings)
            splits.append(meter.split())
        else:
            report = grade_submission(request, settings)
        if report.status is not Status.graded or report.score != report.max_score:
            raise SystemExit(f"bench: the reference did not get full marks: {report.status.value} {report.reason}")
        timings.append({**report.timings.model_dump(), "cpu_s": round(busy_cpu_s() - busy, 2)})
        if reports is not None:
            reports.append(report)
        figures = " ".join(f"{k}={v:.2f}" for k, v in timings[-1].items() if isinstance(v, int | float))
        print(f"  {'cold' if cold else 'warm'}: {figures}", flush=True)
        if splits is not None and client is not None:
            print("    cpu: " + " ".join(f"{k}={v}" for k, v in splits[-1].items()), flush=True)
    return timings


def floor_container_start(client: docker.DockerClient, settings: Settings, repeat: int) -> list[float]:
    """Starting an empty container from the base image, to its exit."""
    values = []
    for _ in range(repeat):
        start = time.monotonic()
        client.containers.run(settings.sandbox.base_image, ["true"], remove=True, network_mode="none")
        values.append(time.monotonic() - start)
    return values


_POLL = (
    "import time, urllib.request\n"
    "while True:\n"
    "    try:\n"
    "        urllib.request.urlopen('http://127.0.0.1:8000/login', timeout=1); break\n"
    "    except Exception:\n"
    "        time.sleep(0.02)\n"
)


def floor_app_boot(client: docker.DockerClient, image: str, repeat: int) -> list[float]:
    """The reference app under Gunicorn with 4 workers, from container start to its first answer (no grader)."""
    script = (
        "gunicorn --config /dev/null --workers 4 --bind 127.0.0.1:8000 wsgi:app 2>/dev/null & server=$!; "
        f"/usr/bin/python3 -c \"{_POLL}\"; kill $server"
    )
    values = []
    for _ in range(repeat):
        start = time.monotonic()
        client.containers.run(
            image, ["/bin/sh", "-c", script], remove=True, network_mode="none",
            environment={"DATABASE_URL": "sqlite:////tmp/app.db", "SECRET_KEY": "bench"},
        )
        values.append(time.monotonic() - start)
    return values


def throughput(settings: Settings, root: Path, workers: int, count: int, extra_env: dict[str, str] | None = None) -> float:
    """Submissions per minute of `count` warm reference grades through `workers` queue workers."""
    data = Path(tempfile.mkdtemp(prefix="gb-", dir="/tmp"))
    env = {
        **os.environ, "GRADER_DATA_DIR": str(data), "GRADER_REPORTS_DIR": str(data / "reports"),
        "GRADER_ASSIGNMENTS_DIR": str(settings.paths.assignments_dir), **(extra_env or {}),
    }
    env.pop("REDIS_URL", None)
    grader = [sys.executable, "-m", "grader"]
    try:
        for _ in range(count):
            subprocess.run([*grader, "submit", str(_repository(root, False)), "--assignment", "flask-notes"],
                           env=env, check=True, capture_output=True)
        start = time.monotonic()
        subprocess.run([*grader, "worker", "--burst", "--concurrency", str(workers)], env=env, check=True,
                       capture_output=True)
        elapsed = time.monotonic() - start
    finally:
        pidfile = data / "redis" / "redis.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
        shutil.rmtree(data, ignore_errors=True)
    return round(count * 60 / elapsed, 2)


def _versions(client: docker.DockerClient) -> dict[str, str]:
    return {"grader": __version__, "docker": client.version().get("Version", "?"), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--submissions", type=int, default=None,
                        help="submissions of each throughput run (10), or of the burst with --only-burst (200)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results.json")
    parser.add_argument(
        "--in-turn", action="store_true",
        help="also measure the throughput with GRADER_PARALLEL_LANES=false (slower grades, a core left per worker)",
    )
    parser.add_argument("--only-cohort", action="store_true",
                        help="only the cohort's figures (bench/cohort.py), saved under \"cohort\" with the file's other keys kept")
    parser.add_argument("--only-jobs", action="store_true", help="only the flask-jobs grade (bench/jobs.py), under \"flask_jobs\"")
    parser.add_argument("--only-cpu-split", action="store_true",
                        help="only the CPU split of --repeat warm flask-notes grades (after one warm-up), under \"cpu_split\"")
    parser.add_argument("--only-burst", action="store_true",
                        help="only the burst through two worker hosts and the status API's pollers (bench/burst.py), "
                        "under \"burst\"; --submissions sets its size")
    args = parser.parse_args()
    submissions = args.submissions or 10
    if args.only_burst:
        burst_bench = _sibling("burst")
        burst_results = burst_bench.run(args.submissions or burst_bench.SUBMISSIONS)
        _save_key(args.out, "burst", burst_results)
        burst_bench.print_table(burst_results)
        return
    if args.only_cpu_split:
        _cpu_split_only(args.repeat, args.out)
        return
    cohort_bench = _sibling("cohort")
    jobs_bench = _sibling("jobs")
    if args.only_jobs:
        jobs_results = jobs_bench.run()
        jobs_bench.save(jobs_results, args.out)
        jobs_bench.print_table(jobs_results)
        return
    if args.only_cohort:
        cohort_results = cohort_bench.run()
        cohort_bench.save(cohort_results, args.out)
        cohort_bench.print_table(cohort_results)
        print(f"written to {args.out} under \"cohort\"")
        return
    settings = Settings()
    client = connect(settings)
    root = Path(tempfile.mkdtemp(prefix="gbench-", dir="/tmp"))
    try:
        cold = grade_series(settings, root, cold=True, repeat=args.repeat)
        reports: list[GradeReport] = []
        splits: list[dict[str, Any]] = []
        warm = grade_series(settings, root, cold=False, repeat=args.repeat, reports=reports, splits=splits, client=client)
        bare = grade_series(settings.replace(code_review=False, own_tests=False), root, cold=False, repeat=args.repeat)
        writing = _writing(reports[-1], root)
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        reference_image = _reference_image(client, settings, root)
        try:
            floor = {
                "container_start_s": _spread(floor_container_start(client, settings, args.repeat))["median"],
                "app_boot_s": _spread(floor_app_boot(client, reference_image, args.repeat))["median"],
            }
        finally:
            client.images.remove(reference_image, force=True)
        rates = {f"workers_{n}": throughput(settings, root, n, submissions) for n in (1, 2)}
        in_turn = {
            f"workers_{n}": throughput(settings, root, n, submissions, {"GRADER_PARALLEL_LANES": "false"})
            for n in (1, 2)
        } if args.in_turn else None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("flask-jobs:", flush=True)
    jobs_results = jobs_bench.run()
    print("cohort (no Docker):", flush=True)
    cohort_results = cohort_bench.run()
    results = {
        "machine": {"cores": os.cpu_count(), **_versions(client)},
        "settings": {"parallel_lanes": settings.sandbox.parallel_lanes, "lane_slots": settings.sandbox.lane_slot_count},
        "cold": {stage: _spread([t[stage] for t in cold]) for stage in STAGES},
        "warm": {stage: _spread([t[stage] for t in warm]) for stage in STAGES},
        "beside": {stage: _spread([t[stage] for t in warm]) for stage in BESIDE},
        "warm_without_review_and_own_tests": {stage: _spread([t[stage] for t in bare]) for stage in STAGES},
        "review_and_own_tests_add_s": round(
            statistics.median(t["total_s"] for t in warm) - statistics.median(t["total_s"] for t in bare), 3
        ),
        "write_report_s": writing,
        "cpu_s": {
            name: _spread([t["cpu_s"] for t in series]) for name, series in (("cold", cold), ("warm", warm), ("bare", bare))
        },
        "overhead_s": {
            name: round(
                statistics.median(t["total_s"] - (t["boot_s"] - t.get("lanes_boot_s", 0)) - t["tests_s"] for t in series), 3
            )
            for name, series in (("cold", cold), ("warm", warm))
        },
        "cpu_split": summarize(splits),
        "peak_memory_mib": {"grading_process": round(peak_self, 1), "largest_child": round(peak_children, 1)},
        "throughput": rates,
        **({"throughput_lanes_in_turn": in_turn} if in_turn else {}),
        "floor": floor,
        "repeat": args.repeat,
        "submissions": submissions,
        "flask_jobs": jobs_results,
        "cohort": cohort_results,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    print_row(results["cpu_split"])
    jobs_bench.print_table(jobs_results)
    cohort_bench.print_table(cohort_results)
    print(f"written to {args.out}")


def _save_key(out: Path, key: str, value: object) -> None:
    """Write `value` under `key` in results.json, keeping the file's other keys."""
    existing = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**existing, key: value}, indent=2) + "\n")
    print(f"written to {out} under \"{key}\"")


def _cpu_split_only(repeat: int, out: Path) -> None:
    """One warm-up grade (it may build the dependency layer), then `repeat` warm grades, each with its CPU split."""
    settings = Settings()
    client = connect(settings)
    root = Path(tempfile.mkdtemp(prefix="gbench-", dir="/tmp"))
    splits: list[dict[str, Any]] = []
    try:
        grade_series(settings, root, cold=False, repeat=1)
        grade_series(settings, root, cold=False, repeat=repeat, splits=splits, client=client)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = summarize(splits)
    _save_key(out, "cpu_split", summary)
    print_row(summary)


def _sibling(name: str) -> ModuleType:
    """bench/<name>.py, imported as a module beside this one."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module(name)


def _writing(report: GradeReport, root: Path) -> dict[str, float]:
    """Seconds to write a report's files, with the PDF and without it (median of three)."""
    figures = {}
    for name, pdf in (("with_pdf", True), ("without_pdf", False)):
        times = []
        for index in range(3):
            started = time.monotonic()
            write_report(report, root / f"written-{name}-{index}", pdf=pdf)
            times.append(time.monotonic() - started)
        figures[name] = round(statistics.median(times), 3)
    return figures


def _reference_image(client: docker.DockerClient, settings: Settings, root: Path) -> str:
    """The reference's image, built through the pipeline's own build stage (cached layer)."""
    from grader.sandbox.docker import DockerSandbox
    from grader.stages.build import build_image
    from grader.stages.intake import fetch_snapshot

    request = SubmissionRequest(id=f"bench-{uuid.uuid4().hex[:8]}", source=str(_repository(root, False)),
                                assignment="flask-notes")
    try:
        image = build_image(fetch_snapshot(request, settings), settings, DockerSandbox(client, settings))
    finally:
        shutil.rmtree(settings.paths.work_dir / request.id, ignore_errors=True)
    return image.tag


def _print_table(results: dict) -> None:  # type: ignore[type-arg]
    print(f"{'stage':<10} {'cold median':>12} {'cold min-max':>16} {'warm median':>12} {'warm min-max':>16}")
    for stage in STAGES:
        c, w = results["cold"][stage], results["warm"][stage]
        print(f"{stage:<10} {c['median']:>12.2f} {c['min']:>7.2f}-{c['max']:<8.2f} {w['median']:>12.2f} "
              f"{w['min']:>7.2f}-{w['max']:<8.2f}")
    beside = results["beside"]
    print(f"beside the grade (warm): review {beside['review_s']['median']:.2f} s, own tests "
          f"{beside['candidate_tests_s']['median']:.2f} s, waited for after the suite {beside['wait_s']['median']:.2f} s")
    bare = results["warm_without_review_and_own_tests"]["total_s"]["median"]
    print(f"warm total without the review and own tests {bare:.2f} s: they add {results['review_and_own_tests_add_s']:+.2f} s")
    print(f"writing the report: {results['write_report_s']['with_pdf']:.2f} s with the PDF, "
          f"{results['write_report_s']['without_pdf']:.2f} s without")
    overhead = results["overhead_s"]
    print(f"overhead (total - first lane's boot - tests): cold {overhead['cold']:.2f} s, warm {overhead['warm']:.2f} s")
    print(f"machine CPU busy per grade: cold {results['cpu_s']['cold']['median']:.1f} s, "
          f"warm {results['cpu_s']['warm']['median']:.1f} s (on {results['machine']['cores']} cores)")
    print(f"floor: container start {results['floor']['container_start_s']:.2f} s, "
          f"app boot {results['floor']['app_boot_s']:.2f} s")
    for key, label in (("throughput", "throughput"), ("throughput_lanes_in_turn", "throughput, lanes in turn")):
        if key in results:
            rate = results[key]
            print(f"{label} (per minute): 1 worker {rate['workers_1']}, 2 workers {rate['workers_2']} "
                  f"({rate['workers_2'] / rate['workers_1']:.2f}x)")
    print(f"peak memory: grading process {results['peak_memory_mib']['grading_process']} MiB, "
          f"largest child {results['peak_memory_mib']['largest_child']} MiB")


if __name__ == "__main__":
    main()
