"""What the cohort adds to a grade (issue #15): `grader.cohort.place.place` of a new flask-notes submission among 25,
50, 100 and 200 stored ones, on a real SQLite database and real kept code. No Docker.

A comparison costs what the members share, so the cohort looks like a real one: variants of the flask-notes solutions,
half disguised with part of tests/disguise.py's RENAMES, functions dropped and the candidate's own added, every
twentieth a disguised copy of an earlier member; their trees are made on every core, and each is stored through
`place()` itself, with a report of the assignment's real categories and tests. At each size, `--probes` new
submissions (the same at every size, the first a copy) are placed through `place()`, then through the functions it
calls one at a time, and deleted again. What grows with N should double when N doubles, not quadruple. At the largest
size: the views, the side-by-side page, open_database; and copydetect's first call, in fresh interpreters.
Run `python bench/cohort.py` (`--sizes`, `--probes`, `--seed`, `--out`, `--no-save`) or `bench/run.py --only-cohort`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from grader.settings import PROJECT_ROOT, Settings

if str(PROJECT_ROOT) not in sys.path:  # tests.disguise, when run as `python bench/cohort.py`
    sys.path.insert(0, str(PROJECT_ROOT))

from grader.assignments.check import make_solution  # noqa: E402
from grader.assignments.model import load_assignment, test_functions  # noqa: E402
from grader.cohort.files import keep_snapshot, remove_kept  # noqa: E402
from grader.cohort.place import compare_with_cohort, expire_snapshots, matches, member_of, place, position  # noqa: E402
from grader.cohort.similarity import fingerprint_tree  # noqa: E402
from grader.cohort.store import CohortStore  # noqa: E402
from grader.cohort.view import assignment_view, live_report  # noqa: E402
from grader.db.engine import open_database  # noqa: E402
from grader.models import CategoryReport, GradeReport, Provenance, SourceInfo, Status, TestOutcome, TestReport  # noqa: E402
from grader.web.side_by_side import side_by_side  # noqa: E402
from tests.disguise import RENAMES, disguised_copy  # noqa: E402

ASSIGNMENT = "flask-notes"
SOLUTIONS = PROJECT_ROOT / "assignments" / ASSIGNMENT / "solutions"
SIZES = (25, 50, 100, 200)
TARGET_S = 2.0
STEPS = ("expire", "fingerprint", "member", "load", "compare", "pairs", "rank")
DEPENDENT = ("load", "compare", "pairs", "rank")
COPY_EVERY = 20
T = TypeVar("T")
clock = time.perf_counter


def _spread(values: Sequence[float], digits: int = 4) -> dict[str, float]:
    return {key: round(of(values), digits) for key, of in (("median", statistics.median), ("min", min), ("max", max))}


def _median_time(action: Callable[[], object], repeat: int = 3) -> float:
    """Median seconds of `repeat` calls, the garbage collector left on (timeit turns it off)."""
    return round(statistics.median(timeit.repeat(action, "gc.enable()", number=1, repeat=repeat)), 4)


class Reports:
    """GradeReports of flask-notes' real categories and hidden test names; a fifth of the tests fail far more often,
    so the ranks and the hardest tests look like a cohort's."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        assignment = load_assignment(settings.paths.assignments_dir, ASSIGNMENT)
        self.version, self.categories = assignment.version, []
        for c in assignment.categories:
            tests = [(f"{c.test_file}::{name}", name.removeprefix("test_").replace("_", " "), 0.35 if rng.random() < 0.2 else 0.04)
                     for name in sorted(test_functions(assignment.folder / "tests" / c.test_file))]
            self.categories.append((c.id, c.title, c.weight, tests))

    def make(self, submission_id: str, rng: random.Random) -> GradeReport:
        categories = []
        for cid, title, weight, tests in self.categories:
            outcomes = [TestReport(id=tid, title=name, outcome=TestOutcome.failed if rng.random() < rate else TestOutcome.passed)
                        for tid, name, rate in tests]
            score = round(weight * sum(t.outcome is TestOutcome.passed for t in outcomes) / len(outcomes), 2)
            categories.append(CategoryReport(id=cid, title=title, score=score, max_score=weight, tests=outcomes))
        return GradeReport(
            id=submission_id, assignment=ASSIGNMENT, source=SourceInfo(url=f"https://example.invalid/{submission_id}.git"),
            status=Status.graded, score=round(sum(c.score for c in categories), 2), max_score=sum(c.max_score for c in categories),
            grader_version="bench", created_at=datetime.now(UTC), provenance=Provenance(assignment_version=self.version),
            categories=categories,
        )


_OPS = ("+", "-", "*", "//", "%", "^", "|")
_SIMPLE = ("total = total {op} {arg} * {n}", "values = [v {op} {n} for v in range({m})]\ntotal += len(values)",
           "record = {{'key_{n}': {arg}, 'limit': {m}}}\ntotal += record['limit']",
           "label = 'item-{n}-' + str({arg})\ntotal += len(label.split('-'))")
_NESTED = ("if {arg} > {n}:\n{body}\nelse:\n    total -= {m}", "for step in range({m}):\n{body}",
           "while total < {n}:\n{body}\n    total += {m}", "try:\n{body}\nexcept (ValueError, TypeError):\n    total -= {m}")


def _statements(rng: random.Random, args: list[str], count: int, depth: int = 0) -> str:
    """`count` random statements, nested two deep at most, indented into a function body."""
    lines = []
    for _ in range(count):
        arg, n, m, op = rng.choice(args), rng.randint(0, 9999), rng.randint(1, 99), rng.choice(_OPS)
        kind = rng.randrange(8 if depth < 2 else 4)
        if kind < 4:
            lines.append(_SIMPLE[kind].format(arg=arg, n=n, m=m, op=op))
        else:
            body = _statements(rng, args, rng.randint(1, 3), depth + 1)
            lines.append(_NESTED[kind - 4].format(arg=arg, n=n, m=m, body=body))
    return textwrap.indent("\n".join(lines), "    ")


def own_function(rng: random.Random) -> str:
    """A function of the candidate's own: random statements and constants, so hashes no other member has."""
    args = [f"arg{i}" for i in range(rng.randint(1, 4))]
    name, body = f"own_{rng.randrange(16 ** 6):06x}", _statements(rng, args, rng.randint(3, 8))
    return f"def {name}({', '.join(args)}):\n    total = 0\n{body}\n    return total {rng.choice(_OPS)} {rng.randint(0, 999)}\n"


def _mutate(tree: Path, rng: random.Random) -> None:
    """Top-level functions dropped, the candidate's own added (to its modules and in one of its own), templates touched."""
    for module in sorted(p for p in tree.rglob("*.py") if "migrations" not in p.parts):
        parsed = ast.parse(text := module.read_text())
        functions = [node for node in parsed.body if isinstance(node, ast.FunctionDef)]
        if rng.random() < 0.3 and len(functions) > 1:
            parsed.body.remove(rng.choice(functions))
            text = ast.unparse(parsed) + "\n"
        if rng.random() < 0.5:
            text += "\n\n" + "\n\n".join(own_function(rng) for _ in range(rng.randint(1, 3)))
        module.write_text(text)
    own = "\n\n".join(own_function(rng) for _ in range(rng.randint(2, 8)))
    (tree / f"{rng.choice(('helpers', 'utils', 'services', 'validation'))}.py").write_text(own)
    for template in (t for t in sorted(tree.rglob("*.html")) if rng.random() < 0.3):
        n = rng.randint(0, 9999)
        template.write_text(template.read_text() + f'\n<p class="extra-{n}">{{{{ {rng.choice(("title", "body"))} }}}} {n}</p>\n')


def make_variant(bases: dict[str, Path], dest: Path, rng: random.Random) -> Path:
    """A candidate's tree: a quarter from each whole solution, half from the reference's flaws; disguised half the time."""
    names, whole = sorted(bases), ("reference", "single-module")
    base = bases[rng.choices(names, [0.25 if n in whole else 0.5 / max(len(names) - 2, 1) for n in names])[0]]
    if rng.random() < 0.5:
        disguised_copy(base, dest, dict(rng.sample(sorted(RENAMES.items()), rng.randint(5, len(RENAMES)))))
    else:
        shutil.copytree(base, dest)
    _mutate(dest, rng)
    return dest


def make_copy(tree: Path, dest: Path, rng: random.Random) -> Path:
    """A disguised copy of `tree` with a function of the copier's own: a copy the cohort should flag."""
    disguised_copy(tree, dest, RENAMES)
    module = next(p for p in sorted(dest.rglob("*.py")) if "migrations" not in p.parts)
    module.write_text(module.read_text() + "\n\n" + own_function(rng))
    return dest


def _copied(seed: int, index: int) -> int | None:
    """The earlier member the `index`-th one copies (every COPY_EVERY-th is a copy), or None."""
    if index % COPY_EVERY != COPY_EVERY - 1:
        return None
    return random.Random(f"{seed}/copy/{index}").choice([j for j in range(index) if j % COPY_EVERY != COPY_EVERY - 1])


def _prepare(job: tuple[int, int, dict[str, Path], Path, Path]) -> None:
    """One member's tree made and kept (in a worker process)."""
    index, seed, bases, trees, snapshots_dir = job
    rng, copied, dest = random.Random(f"{seed}/{index}"), _copied(seed, index), trees / f"t{index:04d}"
    keep_snapshot(make_variant(bases, dest, rng) if copied is None else make_copy(trees / f"t{copied:04d}", dest, rng),
                  snapshots_dir / f"s-seed{index:04d}")


def prepare_members(count: int, seed: int, bases: dict[str, Path], trees: Path, snapshots_dir: Path) -> list[Path]:
    """`count` members' kept code, made on every core: the originals first, then the copies of them."""
    jobs = [(i, seed, bases, trees, snapshots_dir) for i in range(count)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for copies in (False, True):
            list(pool.map(_prepare, [j for j in jobs if (_copied(seed, j[0]) is not None) == copies], chunksize=4))
    return [snapshots_dir / f"s-seed{i:04d}" for i in range(count)]


def placed_in_steps(report: GradeReport, kept: Path, store: CohortStore, settings: Settings) -> dict[str, float]:
    """What place() does, through the public functions it calls, each step timed."""
    seconds = dict.fromkeys(STEPS, 0.0)

    def step(name: str, action: Callable[[], T]) -> T:
        start = clock()
        result = action()
        seconds[name] += clock() - start
        return result

    step("expire", lambda: expire_snapshots(store, settings))
    fingerprint = step("fingerprint", lambda: fingerprint_tree(kept))
    member = step("member", lambda: member_of(report, store.candidate_of(report.id), kept, fingerprint))
    step("member", lambda: store.put_member(member))
    others = step("load", lambda: store.fingerprints(report.assignment, exclude=report.id))
    pairs = step("compare", lambda: compare_with_cohort(member, fingerprint, others, store, settings.cohort))
    step("pairs", lambda: store.put_pairs(pairs))
    scores = step("rank", lambda: store.scores(report.assignment, member.assignment_version))
    step("rank", lambda: (position(scores, report.id, settings.cohort), matches(report.id, pairs, settings.cohort)))
    return seconds


class Cohort:
    """The database and the kept code; every member is stored through place(), each placement's seconds kept."""

    def __init__(self, settings: Settings, kept: list[Path], seed: int) -> None:
        self.settings, self.kept, self.seed, self.placing_s = settings, kept, seed, list[float]()
        self.store = CohortStore(open_database(settings))
        self.reports, self.rng = Reports(settings, random.Random(seed + 1)), random.Random(seed + 2)

    def grow_to(self, size: int) -> None:
        while (index := len(self.placing_s)) < size:
            report = self.reports.make(f"s-seed{index:04d}", random.Random(f"{self.seed}/report/{index}"))
            start = clock()
            place(report, self.kept[index], self.store, self.settings)
            self.placing_s.append(clock() - start)

    def probe(self, tree: Path, label: str) -> dict[str, Any]:
        """A new submission placed through place(), then again in steps; deleted after each."""
        report = self.reports.make(f"s-probe-{label}", self.rng)
        kept = keep_snapshot(tree, self.settings.paths.snapshots_dir / report.id)
        assert kept is not None
        start = clock()
        placed = place(report, kept, self.store, self.settings)
        figures: dict[str, Any] = {"place": clock() - start, "stored": len(self.store.pairs_of(report.id)),
                                   "flagged": any(m.flagged for m in placed.similar)}
        self.store.delete(report.id)
        figures.update(placed_in_steps(report, kept, self.store, self.settings))
        self.store.delete(report.id)
        remove_kept(kept, self.settings.paths.snapshots_dir)
        return figures

    def at_size(self, size: int, trees: list[Path]) -> dict[str, Any]:
        runs = [self.probe(tree, f"{size}-{n}") for n, tree in enumerate(trees)]
        steps = {k: round(statistics.median(r[k] for r in runs), 4) for k in STEPS}
        dependent = sum(steps[k] for k in DEPENDENT)
        return {
            "place_s": _spread([r["place"] for r in runs]), "steps_s": steps, "steps_sum_s": round(sum(steps.values()), 4),
            "cohort_dependent_s": round(dependent, 4), "cohort_dependent_ms_per_member": round(1000 * dependent / size, 3),
            "seeding_place_s": _spread(self.placing_s[max(0, size - 10):size]),
            "pairs_stored": int(statistics.median(r["stored"] for r in runs)), "copy_flagged": bool(runs[0]["flagged"]),
        }

    def at_largest(self) -> dict[str, Any]:
        """The views, the side-by-side page of the closest stored pair, opening the database."""
        store, settings, closest = self.store, self.settings, self.store.pairs_at_least(ASSIGNMENT, 0.0)[0]
        a, b = store.member(closest.a), store.member(closest.b)
        assert a is not None and b is not None
        report = self.reports.make(closest.a, random.Random(0))  # live_report reads only its id from the report
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        return {
            "live_report_s": _median_time(lambda: live_report(report, store, settings.cohort)),
            "assignment_view_s": _median_time(lambda: assignment_view(store, ASSIGNMENT, settings.cohort)),
            "pairs_shown": len(assignment_view(store, ASSIGNMENT, settings.cohort).pairs),
            "side_by_side_s": _median_time(lambda: side_by_side(a, b, store, settings, ())),
            "of_which_fingerprinting_both_s": _median_time(lambda: [fingerprint_tree(Path(m.snapshot_path or "")) for m in (a, b)]),
            "side_by_side_pair": {"a": a.submission_id, "b": b.submission_id, "stored_score": closest.score,
                                  "score_now": side_by_side(a, b, store, settings, ()).score},
            "open_database_s": _median_time(lambda: open_database(settings).dispose()),
            "stored_pairs": len(store.pairs_at_least(ASSIGNMENT, 0.0)),
            "database_mib": round(sum(p.stat().st_size for p in database.parent.glob(database.name + "*")) / 2**20, 2),
        }


_FIRST_CALL = r"""
import json, sys, time
from pathlib import Path
t, start = {}, time.perf_counter()
def lap(name): global start; t[name] = round(time.perf_counter() - start, 3); start = time.perf_counter()
import grader.cohort.place; lap("import_grader_cohort_place_s")
if sys.argv[2] == "pre": import matplotlib.pyplot; lap("import_matplotlib_pyplot_s"); import copydetect; lap("then_copydetect_s")
from grader.cohort.similarity import fingerprint_tree
fingerprint_tree(Path(sys.argv[1])); lap("first_fingerprint_s"); fingerprint_tree(Path(sys.argv[1])); lap("later_fingerprint_s")
print(json.dumps({**t, "matplotlib_loaded": "matplotlib.pyplot" in sys.modules}))
"""


def first_call(tree: Path) -> dict[str, Any]:
    """In fresh interpreters: the first fingerprint (copydetect imported then), and the imports it pays for, apart."""
    cold, pre = (json.loads(subprocess.run([sys.executable, "-c", _FIRST_CALL, str(tree), mode], cwd=PROJECT_ROOT,
                                           check=True, capture_output=True, text=True).stdout) for mode in ("cold", "pre"))
    return {**cold, "first_call_extra_s": round(cold["first_fingerprint_s"] - cold["later_fingerprint_s"], 3),
            "import_copydetect_s": round(pre["import_matplotlib_pyplot_s"] + pre["then_copydetect_s"], 3),
            "of_which_matplotlib_pyplot_s": pre["import_matplotlib_pyplot_s"]}


def _fit(sizes: Sequence[int], seconds: Sequence[float]) -> dict[str, Any]:
    """A line through (size, ms), and what a parabola's squared term would add at the largest size."""
    x, y = np.asarray(sizes, dtype=float), 1000 * np.asarray(seconds, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    squared = float(np.polyfit(x, y, 2)[0]) * float(x.max()) ** 2 if len(x) > 2 else 0.0
    return {"ms_per_member": round(float(slope), 3), "intercept_ms": round(float(intercept), 1),
            "r2": round(float(np.corrcoef(x, y)[0, 1] ** 2), 4), "squared_term_at_largest_ms": round(squared, 1)}


def run(sizes: Sequence[int] = SIZES, probes: int = 5, seed: int = 15) -> dict[str, Any]:
    """The cohort's figures (see the module's docstring)."""
    begun, sizes = clock(), sorted(sizes)
    root = Path(tempfile.mkdtemp(prefix="gcohort-", dir="/tmp"))
    try:
        settings = Settings.model_validate(  # the bench's own folders and database, whatever GRADER_* says
            {"data_dir": root / "var", "reports_dir": root / "reports", "database_url": f"sqlite:///{root / 'var' / 'grader.db'}"})
        first = first_call(SOLUTIONS / "reference")
        fingerprint_tree(SOLUTIONS / "reference")  # copydetect imported here, not in the first placement
        bases = {s.name: make_solution(s, root / "bases" / s.name) for s in sorted(p for p in SOLUTIONS.iterdir() if p.is_dir())}
        cohort = Cohort(settings, prepare_members(sizes[-1], seed, bases, root / "trees", settings.paths.snapshots_dir), seed)
        rng, by_size = random.Random(seed + 3), {}
        trees = [make_copy(cohort.kept[rng.randrange(sizes[0])], root / "probes" / "0", rng)]
        trees += [make_variant(bases, root / "probes" / str(n), rng) for n in range(1, probes)]
        prepare_s = clock() - begun
        for size in sizes:
            cohort.grow_to(size)
            by_size[str(size)] = cohort.at_size(size, trees)
            print(f"  cohort {size}: place {by_size[str(size)]['place_s']['median']:.3f} s", flush=True)
        largest = cohort.at_largest()
        hashes = [len(f.hashes) for f in cohort.store.fingerprints(ASSIGNMENT, exclude="") if f.hashes is not None]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    top, dependent = by_size[str(sizes[-1])], [by_size[str(n)]["cohort_dependent_s"] for n in sizes]
    return {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                    **{name: package_version(name) for name in ("copydetect", "pygments", "numpy")}},
        "assignment": ASSIGNMENT, "sizes": list(sizes), "probes": probes, "seed": seed, "member_hashes": _spread(hashes, 0),
        "target_s": TARGET_S, "place_at_largest_s": top["place_s"]["median"], "meets_target": top["place_s"]["median"] < TARGET_S,
        "by_size": by_size,
        "linearity": {
            "cohort_dependent_ratio": {f"{sizes[i + 1]}/{sizes[i]}": round(dependent[i + 1] / dependent[i], 2)
                                       for i in range(len(sizes) - 1)},
            "cohort_dependent_fit": _fit(sizes, dependent),
            "place_fit": _fit(sizes, [by_size[str(n)]["place_s"]["median"] for n in sizes]),
            "note": f"cohort_dependent = {' + '.join(DEPENDENT)}; from N to 2N a ratio near 2 is linear, near 4 quadratic",
        },
        "at_largest": largest, "first_call": first,
        "seeding": {"through_place": len(cohort.placing_s), "place_s": _spread(cohort.placing_s),
                    "total_s": round(sum(cohort.placing_s), 1)},
        "first_call_and_making_the_trees_s": round(prepare_s, 1), "bench_s": round(clock() - begun, 1),
    }


def _line(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in figures.items() if not isinstance(v, dict) and k != "note")


def print_table(results: dict[str, Any]) -> None:
    print(f"{results['assignment']}: a new submission placed among N (ms, median of {results['probes']}; a member has "
          f"{results['member_hashes']['median']:.0f} hashes); dep/N: ({'+'.join(DEPENDENT)})/N; seeding: the last 10 seeded")
    print(" ".join(f"{h:>8}" for h in ("N", "place()", *STEPS, "sum", "dep/N", "seeding", "pairs")))
    for size in results["sizes"]:
        row = results["by_size"][str(size)]
        cells = [row["place_s"]["median"], *row["steps_s"].values(), row["steps_sum_s"], row["seeding_place_s"]["median"]]
        print(" ".join([f"{size:>8}", *(f"{1000 * v:>8.1f}" for v in cells[:-1]), f"{row['cohort_dependent_ms_per_member']:>8.3f}",
                        f"{1000 * cells[-1]:>8.1f}", f"{row['pairs_stored']:>8}"]))
    lin = results["linearity"]
    print("cohort-dependent time: " + _line(lin["cohort_dependent_ratio"]) + " (2 = linear, 4 = quadratic); fitted "
          + _line(lin["cohort_dependent_fit"]) + "; place(): " + _line(lin["place_fit"]))
    print(f"at {results['sizes'][-1]}: " + _line(results["at_largest"]))
    print("first call: " + _line(results["first_call"]))
    print(f"seeding: {results['seeding']['through_place']} members through place(), {results['seeding']['total_s']} s; "
          f"place() at {results['sizes'][-1]}: {results['place_at_largest_s']:.3f} s, "
          f"{'meets' if results['meets_target'] else 'misses'} the target of {results['target_s']:g} s; bench "
          f"{results['bench_s']} s, {results['first_call_and_making_the_trees_s']} s of it before the seeding")


def save(results: dict[str, Any], out: Path) -> None:
    """`results` under "cohort" in `out`, the file's other keys kept."""
    existing = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**existing, "cohort": results}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=list(SIZES),
                        help="cohort sizes, comma-separated (default 25,50,100,200)")
    parser.add_argument("--probes", type=int, default=5, help="new submissions placed at each size (their median)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results.json")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    results = run(args.sizes, args.probes, args.seed)
    print_table(results)
    if not args.no_save:
        save(results, args.out)
        print(f"written to {args.out} under \"cohort\"")


if __name__ == "__main__":
    main()
