"""ruff for the rules others keep (Bandit's security rules, complexity, a few real bugs); radon for sizes.

ruff runs `--isolated` (the candidate's configuration is never read), without a cache, ignoring `# noqa`
(the snippet still shows the candidate's comment), over the files the walk chose: never over a folder,
whose links it might follow. Only files Python parsed are given to it, since a nesting Python refuses can
overflow ruff's stack and lose every file's findings. Its output is read as JSON lines, capped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from grader.review.findings import CORRECTNESS, MAINTAINABILITY, ROBUSTNESS, SECURITY, Finding, finding, trim
from grader.review.module import Module

MAX_COMPLEXITY = 10
SELECT = ("S", "C901", "B006", "B012", "B023", "E722", "F821", "F632")
IGNORED = {
    "S104": "binding 0.0.0.0 is how an app in a container is reached",
    "S108": "a /tmp path is the usual SQLite file of a take-home",
    "S311": "random is flagged wherever it is used, mostly for things that are not secrets",
    "S603": "every subprocess call is flagged, with or without input from outside",
    "S607": "a command found on PATH is how tools are run",
    "S608": "grader:sql-from-strings replaces it, without flagging constant table names",
    "S704": "grader:unsafe-markup replaces it, knowing escape() and constants",
}
"""ruff rules left out, and why: each is noise for a Flask take-home, or one of our rules says it better."""
IGNORED_IN_TESTS = {"S101", "S105", "S106", "S107"}
"""Asserts and made-up passwords are what tests are made of."""
RULES = {
    "S101": (ROBUSTNESS, "Asserts are removed under `python -O`: a check written as assert is no check in production."),
    "S105": (SECURITY, "A password or key in the code is readable by anyone with the repository."),
    "S106": (SECURITY, "A password or key in the code is readable by anyone with the repository."),
    "S107": (SECURITY, "A password or key in the code is readable by anyone with the repository."),
    "S110": (ROBUSTNESS, "The exception is swallowed: the failure disappears instead of reaching the logs."),
    "S112": (ROBUSTNESS, "The exception is swallowed: the failure disappears instead of reaching the logs."),
    "S113": (ROBUSTNESS, "A request without a timeout can hang a worker for ever."),
    "S301": (SECURITY, "Unpickling data from outside runs whatever code it carries."),
    "S307": (SECURITY, "eval() runs any code in the string it gets."),
    "S324": (SECURITY, "MD5 and SHA-1 are broken; passwords need a salted slow hash (werkzeug's generate_password_hash)."),
    "S506": (SECURITY, "yaml.load() without a safe loader can build any object (code execution)."),
    "S602": (SECURITY, "A shell runs the command: a value in it can add commands of its own."),
    "S605": (SECURITY, "A shell runs the command: a value in it can add commands of its own."),
    "S701": (SECURITY, "Without autoescaping, user data writes HTML and scripts into pages (XSS)."),
    "C901": (MAINTAINABILITY, "A function with this many branches is hard to test and to review; split it."),
    "B006": (CORRECTNESS, "A mutable default is made once and shared by every call: state leaks between requests."),
    "B012": (CORRECTNESS, "A return or break in `finally` swallows the exception in flight."),
    "B023": (CORRECTNESS, "The function sees the loop variable's last value, not the one of its iteration."),
    "E722": (ROBUSTNESS, "A bare except also catches SystemExit and KeyboardInterrupt and hides bugs; catch what you expect."),
    "F821": (CORRECTNESS, "The name is not defined: the line raises NameError when it runs."),
    "F632": (CORRECTNESS, "`is` compares identity, not value: with a literal it is a bug."),
}
SECRET_RULES = {"S105", "S106", "S107"}
"""Left to grader:hard-coded-secret on a SECRET_KEY line: it knows a test config from a production one."""
_SECRET_KEY = re.compile(r"secret_key", re.IGNORECASE)
MAX_DIAGNOSTICS = 5000
_BATCH_CHARS = 64 * 1024


def ruff_binary() -> Path | None:
    """The ruff installed with the grader, or None."""
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return beside
    try:
        from ruff import find_ruff_bin
    except ImportError:
        return None
    try:
        return Path(find_ruff_bin())
    except FileNotFoundError:
        return None


class Ruff:
    """ruff over the parsed modules, started at once so it works while our own rules run; `findings()` waits."""

    def __init__(self, root: Path, modules: list[Module]) -> None:
        self.root = root
        self.base = os.path.realpath(root)
        self.by_path = {m.path: m for m in modules}
        self.binary = ruff_binary()
        self.batches = _batches(sorted(self.by_path))
        self.process: subprocess.Popen[bytes] | None = None
        if self.binary is not None and self.batches:
            self.process = self._start(self.batches.pop(0))

    def _start(self, paths: list[str]) -> subprocess.Popen[bytes]:
        assert self.binary is not None
        command = [
            str(self.binary), "check", "--isolated", "--no-cache", "--output-format", "json-lines", "--exit-zero",
            "--ignore-noqa", "--select", ",".join(SELECT), "--ignore", ",".join(sorted(IGNORED)),
            "--config", f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}", "--", *paths,
        ]
        environment = {"RAYON_NUM_THREADS": str(min(4, os.cpu_count() or 1)), "NO_COLOR": "1"}
        return subprocess.Popen(command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=environment)

    def findings(self) -> tuple[list[Finding], str]:
        """ruff's findings, and "" or why some are missing."""
        if self.binary is None:
            return [], "ruff is not installed with the grader (pip install ruff), so only the grader's own rules ran"
        found: list[Finding] = []
        problems: list[str] = []
        read = 0
        while self.process is not None:
            diagnostics, problem = _read(self.process, MAX_DIAGNOSTICS - read)
            read += len(diagnostics)
            if problem:
                problems.append(problem)
            found += [item for item in map(self._finding, diagnostics) if item is not None]
            self.close()
            self.process = self._start(self.batches.pop(0)) if self.batches and read < MAX_DIAGNOSTICS else None
        return found, "; ".join(dict.fromkeys(problems))

    def finished(self) -> list[Finding]:
        """What the running batch found, if it has ended: kept when the time runs out while our rules work."""
        if self.process is None or self.process.poll() is None:
            return []
        diagnostics, _ = _read(self.process, MAX_DIAGNOSTICS)
        self.process = None
        return [item for item in map(self._finding, diagnostics) if item is not None]

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _finding(self, item: dict[str, object]) -> Finding | None:
        code = item.get("code")
        relative = os.path.relpath(str(item.get("filename", "")), self.base).replace(os.sep, "/")
        module = self.by_path.get(relative)
        if not isinstance(code, str) or module is None:
            return None
        location = item.get("location")
        line = int(location.get("row") or 0) if isinstance(location, dict) else 0
        if module.source.kind == "test" and code in IGNORED_IN_TESTS:
            return None
        if code in SECRET_RULES and _SECRET_KEY.search(module.lines[line - 1] if 0 < line <= len(module.lines) else ""):
            return None
        severity, why = RULES.get(code, (SECURITY if code.startswith("S") else MAINTAINABILITY, ""))
        message = trim(str(item.get("message", "")), 200).rstrip(".") + "." + (f" {why}" if why else "")
        return finding(f"ruff:{code}", severity, relative, line, module.lines, message)


def _batches(paths: list[str]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    size = 0
    for path in paths:
        if batches[-1] and size + len(path) > _BATCH_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += len(path) + 1
    return [batch for batch in batches if batch]


def _read(process: subprocess.Popen[bytes], cap: int) -> tuple[list[dict[str, object]], str]:
    """One ruff run's diagnostics, at most `cap`, and "" or why some are missing."""
    diagnostics: list[dict[str, object]] = []
    assert process.stdout is not None
    for raw in process.stdout:
        if len(diagnostics) >= cap:
            return diagnostics, f"ruff's findings were cut at {MAX_DIAGNOSTICS}"
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            diagnostics.append(item)
    process.wait()
    if process.returncode:
        how = f"signal {-process.returncode}" if process.returncode < 0 else f"exit {process.returncode}"
        return diagnostics, f"ruff stopped early ({how}), so some of its findings are missing"
    return diagnostics, ""


def measure(modules: list[Module]) -> dict[str, float | int | str]:
    """Sizes and complexity from radon: lines of code (SLOC), the largest module, the most complex function and
    the average maintainability index (0-100, higher is easier), over the app's code; tests counted apart."""
    from radon.metrics import h_visit_ast, mi_compute
    from radon.raw import analyze
    from radon.visitors import ComplexityVisitor

    metrics: dict[str, float | int | str] = {"python_files": 0, "python_lines": 0, "test_files": 0, "test_lines": 0}
    largest = ("", -1)
    worst = ("", 0)
    indexes: list[float] = []
    for module in modules:
        try:
            raw = analyze(module.source.text)
        except Exception:  # radon's own tokenizer may refuse code that Python parsed
            continue
        test = module.source.kind == "test"
        metrics["python_files"] = int(metrics["python_files"]) + 1
        metrics["python_lines"] = int(metrics["python_lines"]) + raw.sloc
        if test:
            metrics["test_files"] = int(metrics["test_files"]) + 1
            metrics["test_lines"] = int(metrics["test_lines"]) + raw.sloc
            continue
        if raw.sloc > largest[1]:
            largest = (module.path, raw.sloc)
        try:
            visitor = ComplexityVisitor.from_ast(module.tree)
            volume = h_visit_ast(module.tree).total.volume
        except RecursionError:
            continue
        pending = list(visitor.functions) + [method for cls in visitor.classes for method in cls.methods]
        while pending:
            block = pending.pop()
            pending.extend(block.closures)
            if block.complexity > worst[1]:
                worst = (f"{module.path}:{block.lineno} {block.name}", block.complexity)
        if raw.sloc:
            comments = (raw.comments + raw.multi) / raw.sloc * 100
            indexes.append(mi_compute(volume, visitor.total_complexity, raw.lloc, comments))
    if largest[0]:
        metrics["largest_module"], metrics["largest_module_lines"] = largest
    if worst[0]:
        metrics["max_complexity_at"], metrics["max_complexity"] = worst
    if indexes:
        metrics["maintainability_index"] = round(sum(indexes) / len(indexes), 1)
    return metrics
