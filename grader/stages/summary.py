"""Why this score: a verdict, each lost test with its rubric line, severity, evidence and a reproduction, and
what limits the confidence in the grade. Pure: the scored categories in, a `Summary` out; never changes a point.
"""

from __future__ import annotations

import shlex

from grader.assignments.model import Assignment, Category
from grader.models import (
    CategoryReport,
    CodeReview,
    Exchange,
    LostTest,
    Severity,
    Summary,
    TestReport,
)

_EVIDENCE = 700
_BODY = 300
_LIMITS = {
    "memory": "the app hit its memory limit, so some failures may be the limit rather than the code",
    "boot_time": "the app took longer than its boot time limit",
    "suite_time": "the hidden suite was stopped at its time limit; tests that never ran count as errors",
    "test_time": "a test was stopped at its time limit, usually an app that hangs (a lock, a deadlock)",
}
_INTERMITTENT = (
    "failed, then passed when re-run once for diagnosis: usually per-process state (a secret or sessions held in "
    "one worker's memory) or a race between workers; the score keeps the failure"
)


def summarize(
    categories: list[CategoryReport], assignment: Assignment, *, limits_hit: list[str], stopped_reason: str = "",
    review: CodeReview | None = None,
) -> Summary:
    by_id = {c.id: c for c in assignment.categories}
    lost = [
        _lost(test, category, by_id.get(category.id), assignment)
        for category in categories for test in category.tests
        if test.outcome.lost
    ]
    lost.sort(key=lambda row: (row.severity is not Severity.security, -row.points))
    caveats = [f"{row.title} ({row.category}) {_INTERMITTENT}" for row in lost if row.intermittent]
    caveats += [_LIMITS.get(limit, f"the sandbox limit {limit} was hit") for limit in dict.fromkeys(limits_hit)]
    if stopped_reason:
        caveats.append(stopped_reason)
    return Summary(verdict=_verdict(categories, lost, assignment, review), lost=lost, caveats=caveats)


def _lost(test: TestReport, category: CategoryReport, rubric: Category | None, assignment: Assignment) -> LostTest:
    spec = assignment.spec_of(test.id)
    severity = (spec.severity if spec and spec.severity else None) or (rubric.severity if rubric else Severity.correctness)
    return LostTest(
        category=category.id, test=test.id, title=test.title, points=test.points,
        rubric=(spec.rubric if spec and spec.rubric else None) or (rubric.rubric if rubric else "") or category.title,
        severity=severity, evidence=evidence_of(test),
        reproduce=(spec.reproduce if spec and spec.reproduce else None) or reproduce(test.exchanges, assignment.run.port),
        intermittent=test.intermittent,
    )


def evidence_of(test: TestReport) -> str:
    """The assertion's message and the last exchange, trimmed: enough to see the flaw without the full log."""
    parts = [_trim(test.message, _EVIDENCE)] if test.message else []
    if test.exchanges:
        parts.append(_exchange(test.exchanges[-1]))
    return "\n".join(parts)


def _exchange(exchange: Exchange) -> str:
    request = f"{exchange.method} {exchange.url}"
    if exchange.request_body:
        request += f"  {_trim(exchange.request_body, _BODY)}"
    headers = "".join(f"\n  {name}: {value}" for name, value in exchange.response_headers.items())
    answer = f"-> {exchange.status}" if exchange.status is not None else "-> no answer"
    body = f"\n  {_trim(exchange.response_body, _BODY)}" if exchange.response_body else ""
    return f"{request}\n{answer}{headers}{body}"


def reproduce(exchanges: list[Exchange], port: int) -> str:
    """A curl line replaying the last request a failing test made, against the candidate's own instance."""
    if not exchanges:
        return ""
    last = exchanges[-1]
    words = ["curl", "-i", "-X", last.method, f"http://127.0.0.1:{port}{last.url if last.url.startswith('/') else '/'}"]
    if last.request_content_type:
        words += ["-H", f"Content-Type: {last.request_content_type}"]
    if last.request_body and not last.request_body.endswith("…"):
        words += ["--data", last.request_body]
    return " ".join(shlex.quote(word) for word in words)


def _verdict(categories: list[CategoryReport], lost: list[LostTest], assignment: Assignment, review: CodeReview | None) -> str:
    score = round(sum(c.score for c in categories), 2)
    sentences = [f"Scored {score:g} of {assignment.max_score:g}."]
    if not lost:
        sentences.append("Every hidden test passed.")
    security = [row for row in lost if row.severity is Severity.security]
    if security:
        checks = dict.fromkeys(_check_name(row, assignment) for row in security)
        sentences.append(
            f"Security: {_join(list(checks))} failed, costing {round(sum(r.points for r in security), 1):g} points."
        )
    short = [c for c in categories if c.score < c.max_score]
    if short:
        worst = min(short, key=lambda c: c.score / c.max_score if c.max_score else 1)
        sentences.append(f"Weakest: {worst.title} ({worst.score:g}/{worst.max_score:g}).")
    full = [c.title for c in categories if c.max_score and c.score >= c.max_score]
    if full and short:
        sentences.append(f"Full marks in {_join(full)}.")
    others = len(lost) - len(security)
    if others:
        sentences.append(f"{others} other failed test{'s' if others != 1 else ''}, of {sum(len(c.tests) for c in categories)}.")
    flaky = sum(row.intermittent for row in lost)
    if flaky:
        sentences.append(f"{flaky} of the failures passed on a re-run (intermittent), which points to a race or per-process state.")
    if review is not None and review.findings:
        risky = sum(f.severity is Severity.security for f in review.findings)
        sentences.append(
            f"The code review has {len(review.findings)} finding{'s' if len(review.findings) != 1 else ''}"
            + (f", {risky} of them security" if risky else "") + " (not scored)."
        )
    return " ".join(sentences)


def _check_name(row: LostTest, assignment: Assignment) -> str:
    spec = assignment.spec_of(row.test)
    return spec.name if spec else row.title


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
