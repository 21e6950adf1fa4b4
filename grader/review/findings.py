"""Findings as the review's answer carries them: plain dicts in the shape of `grader.models.Finding`.

The child process builds no pydantic model (it starts faster without it); the parent validates the whole
answer against `CodeReview`, so a severity or a field spelt wrong here fails our tests, not a grade.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

SECURITY = "security"
CORRECTNESS = "correctness"
ROBUSTNESS = "robustness"
CONTRACT = "contract"
MAINTAINABILITY = "maintainability"
SEVERITIES = (SECURITY, CORRECTNESS, ROBUSTNESS, CONTRACT, MAINTAINABILITY)
"""The values of `grader.models.Severity`, in the order a report shows them: security first."""

MAX_FINDINGS = 50
MAX_PER_RULE = 10
"""A repository with two hundred of one finding shows ten of them, and room for the others."""
SNIPPET_CHARS = 160
MESSAGE_CHARS = 480

SUPERSEDES = {"grader:debug-mode": ("ruff:S201",), "grader:weak-password-hash": ("ruff:S324",)}
"""Our rule, and the ruff rules it replaces on the same line: ours says more about a Flask app (ruff's MD5/SHA-1
rule on a line that hashes a password says less than ours; ruff's password rules on a SECRET_KEY line are dropped
in `linters.py`, since ours decides when a key in the code is fine)."""

Finding = dict[str, Any]


def trim(text: str, limit: int) -> str:
    """One line of candidate-controlled text, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def snippet(lines: list[str], line: int) -> str:
    """The stripped source line `line` (1-based), trimmed; "" when there is none."""
    return trim(lines[line - 1], SNIPPET_CHARS) if 0 < line <= len(lines) else ""


def finding(rule: str, severity: str, file: str, line: int, lines: list[str], message: str) -> Finding:
    return {
        "rule": rule, "severity": severity, "file": file, "line": max(line, 0),
        "snippet": snippet(lines, line), "message": trim(message, MESSAGE_CHARS),
    }


def finalize(found: list[Finding]) -> tuple[list[Finding], int]:
    """Duplicates and superseded ruff findings removed, security first then by file and line, capped.

    Returns the findings kept and how many were left out by the caps.
    """
    ours = {(f["file"], f["line"], rule) for f in found for rule in SUPERSEDES.get(f["rule"], ())}
    seen: set[tuple[str, str, int]] = set()
    unique: list[Finding] = []
    for item in found:
        key = (item["rule"], item["file"], item["line"])
        if key in seen or (item["file"], item["line"], item["rule"]) in ours:
            continue
        seen.add(key)
        unique.append(item)
    unique.sort(key=lambda f: (SEVERITIES.index(f["severity"]), f["file"], f["line"], f["rule"]))
    per_rule: Counter[str] = Counter()
    kept: list[Finding] = []
    for item in unique:
        per_rule[item["rule"]] += 1
        if per_rule[item["rule"]] <= MAX_PER_RULE and len(kept) < MAX_FINDINGS:
            kept.append(item)
    return kept, len(unique) - len(kept)
