"""The report other tools read (`GradeReport` and its parts), and the statuses and stages a submission passes."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(str, Enum):
    """A submission's whole life; the last five are final report statuses."""

    queued = "queued"
    running = "running"
    graded = "graded"
    rejected = "rejected"
    build_failed = "build_failed"
    boot_failed = "boot_failed"
    infra_error = "infra_error"


class Stage(str, Enum):
    """Where a running submission is; each value is the name of its module in `grader/stages/`."""

    intake = "intake"
    build = "build"
    boot = "boot"
    suite = "suite"
    report = "report"

    @classmethod
    def parse(cls, value: str) -> Stage:
        """A stored stage; `tests` is the suite's name of before the renovation (migration 0004 renames it)."""
        return cls.suite if value == "tests" else cls(value)

    @property
    def progress(self) -> str:
        """The one word the CLI, the pages and the API show for this stage."""
        return STAGE_LABELS[self][0]

    @property
    def description(self) -> str:
        return STAGE_LABELS[self][1]


STAGE_LABELS: dict[Stage, tuple[str, str]] = {
    Stage.intake: ("cloning", "fetching the repository"),
    Stage.build: ("building", "building the image"),
    Stage.boot: ("booting", "booting the app"),
    Stage.suite: ("testing", "running the hidden tests"),
    Stage.report: ("reporting", "writing the report"),
}
"""Each stage's progress word and description: the one table the CLI, the pages and the API read."""


class TestOutcome(str, Enum):
    __test__ = False  # a model, not a pytest test class

    passed = "passed"
    failed = "failed"
    error = "error"
    skipped = "skipped"

    @property
    def lost(self) -> bool:
        """Failed or errored: the test cost its points."""
        return self in (TestOutcome.failed, TestOutcome.error)


class Exchange(Frozen):
    """One HTTP request and its response, as a failed test saw them."""

    method: str
    url: str
    request_body: str = ""
    request_content_type: str = Field("", description="application/json or a form's type, as the test sent it.")
    status: int | None = None
    response_headers: dict[str, str] = {}
    response_body: str = ""


class Severity(str, Enum):
    """What kind of harm a lost test or a review finding means; security findings are shown first."""

    security = "security"
    correctness = "correctness"
    robustness = "robustness"
    contract = "contract"
    maintainability = "maintainability"


class TestReport(Frozen):
    """One hidden test's outcome as the report shows it."""

    __test__ = False

    id: str
    title: str
    outcome: TestOutcome
    message: str = ""
    duration_s: float = 0.0
    exchanges: list[Exchange] = []
    points: float = Field(0.0, description="The share of its category's points this test carries (its weight).")
    rerun: TestOutcome | None = Field(
        None, description="A failed test's outcome when re-run once for diagnosis, right after its lane; never scored.",
    )

    @property
    def intermittent(self) -> bool:
        """Failed, then passed when re-run: usually per-process state or a race."""
        return self.outcome.lost and self.rerun is TestOutcome.passed


class CategoryReport(Frozen):
    id: str
    title: str
    score: float
    max_score: float
    tests: list[TestReport]


class LostTest(Frozen):
    """One row of "why this score": a test that cost points, with its evidence and how to see it yourself."""

    category: str
    test: str = Field(description="The hidden test's id; the candidate's view never shows it unless allowed.")
    title: str
    points: float = Field(description="Points this test cost.")
    rubric: str = Field(description="The line of the brief's rubric the test checks.")
    severity: Severity
    evidence: str = Field("", description="The failing request and response, or the command output, trimmed.")
    reproduce: str = Field("", description="A curl line or a `flask --app wsgi ...` command to run against your own instance.")
    intermittent: bool = Field(False, description="It passed when re-run for diagnosis (the score keeps the failure).")


class Summary(Frozen):
    """Why this score: a verdict, then each lost test, security findings first whatever their points."""

    verdict: str
    lost: list[LostTest] = []
    caveats: list[str] = Field([], description="What limits the confidence in the grade: intermittent tests, limits hit.")


class Finding(Frozen):
    """One finding of the code review: never scored, shown beside the score."""

    rule: str = Field(description="`ruff:S105` for a linter's rule, `grader:<name>` for our own checks.")
    severity: Severity
    file: str = Field(description="Relative to the repository root.")
    line: int = 0
    snippet: str = ""
    message: str = Field(description="What was found and why it matters.")


class CodeReview(Frozen):
    """Static review of the candidate's code: parsed, never imported or run on the grader's side."""

    findings: list[Finding] = []
    metrics: dict[str, float | int | str] = Field({}, description="Sizes and complexity, e.g. python_lines, largest_module.")
    error: str = Field("", description="Why the review is incomplete (its time or memory limit), when it is.")
    duration_s: float = 0.0


class FollowUp(Frozen):
    """A question for the interview, chosen by what the grade and the review found."""

    question: str
    because: list[str] = Field(description="The test ids, category ids or review rules that chose it; `depth` for a depth probe.")
    strong_answer: list[str] = Field(description="What a strong answer includes.")
    depth: bool = Field(False, description="A question that probes depth, asked whatever the grade.")


class CandidateTests(Frozen):
    """The candidate's own tests, run in the sandbox with coverage; never scored."""

    ran: bool
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing: list[str] = Field([], description="Ids of the tests that failed or errored, capped.")
    coverage_percent: float | None = Field(None, description="Line coverage of the candidate's package, when measured.")
    output_tail: str = ""
    note: str = Field("", description="Why they did not run, or what stopped them (no tests, the time budget).")
    duration_s: float = 0.0


class SourceInfo(Frozen):
    url: str
    ref: str | None = None
    commit: str | None = None


class Timings(BaseModel):
    intake_s: float = 0.0
    preflight_s: float = Field(0.0, description="The layout check on the host, between intake and build.")
    build_s: float = 0.0
    boot_s: float = Field(0.0, description="Every lane's app boot: the first lane's, then the others' (beside the suite).")
    lanes_boot_s: float = Field(0.0, description="The part of boot_s spent by lanes after the first, inside tests_s.")
    tests_s: float = 0.0
    reruns_s: float = Field(0.0, description="The part of tests_s spent re-running failed tests for diagnosis.")
    review_s: float = Field(0.0, description="The static review, on the host, beside the build and the suite.")
    candidate_tests_s: float = Field(0.0, description="The candidate's own tests, in a lane beside the suite when a slot is free.")
    wait_s: float = Field(0.0, description="Time after the suite spent waiting for the review or the candidate's tests.")
    report_s: float = 0.0
    total_s: float = 0.0
    services_ready_s: dict[str, float] = Field(
        {}, description="Seconds each of the first pod's services (PostgreSQL, Redis, Nginx) took to answer.",
    )
    worker_ready_s: list[float] = Field([], description="Seconds each start of the background worker took to be ready.")
    lanes_s: dict[str, float] = Field({}, description="Each lane's wall time (its boot, tests and re-runs), by lane name.")
    lane_boots_s: dict[str, float] = Field(
        {}, description="What each lane's app boot cost, by lane name: the first lane's (in boot_s before the suite) "
        "and the others' (inside their lane's wall time).",
    )


class Provenance(Frozen):
    """Where the grade came from: the commit, the dependencies installed, the image, the assignment's version."""

    commit: str | None = None
    requirements_sha256: str | None = Field(None, description="sha256 of the root requirements.txt as committed.")
    image_id: str | None = Field(None, description="The submission's image on its host (built there, so per host).")
    base_image_id: str | None = None
    base_image_digest: str | None = Field(
        None, description="The base image's content (its layer's sha256): equal on two hosts that built the same base.",
    )
    host: str | None = Field(None, description="The host that graded it.")
    assignment_version: str | None = None
    deps_cached: bool | None = None
    dependency_format: str | None = Field(
        None, description='What the dependencies were read from: "requirements", "uv.lock", "poetry.lock", '
        '"Pipfile.lock" or "pyproject.toml".',
    )
    dependency_files: list[str] = Field([], description="The files read, relative to the root, e.g. requirements/prod.txt.")
    dependencies_sha256: str | None = Field(None, description="sha256 of the normalized requirements text installed.")
    pod_limits: dict[str, float] = Field(
        {}, description="One lane's pod at most, summed over its containers: containers, memory_mb, pids, cpus.",
    )
    test_tools: list[str] = Field(
        [], description="What the grader added to run the candidate's own tests (pytest, coverage), when it added any.",
    )


class EarlierGrade(Frozen):
    """The grade a regrade replaced, and what differs between the two gradings (host, base image, code...)."""

    status: Status
    score: float
    max_score: float
    graded_at: datetime
    host: str | None = None
    differences: dict[str, tuple[str | None, str | None]] = Field(
        {}, description="What differs, earlier then now, by name: commit, dependencies, base image, assignment "
        "version, grader version, host. Empty: the same inputs on the same host.",
    )
    unknown: list[str] = Field([], description="What one of the two gradings did not record, so was not compared.")

    @property
    def same_inputs(self) -> bool:
        """Everything graded was the same (the host aside): a change of score is the run's own."""
        return not self.unknown and set(self.differences) <= {"host"}


SIMILAR_FLOOR = 0.1
"""Pairs scoring below this are neither stored nor shown: a tenth of shared code is what independent solutions of one
brief share (the reference against an independent solution: 0.21 before code common to the cohort is subtracted)."""


class SimilarMatch(Frozen):
    """An earlier submission of the same assignment whose code this one's resembles: a prompt to review, never a verdict."""

    submission: str
    score: float = Field(description="0-1: the larger share of either side's fingerprints found in the other.")
    flagged: bool = Field(description="At or above the similarity threshold, and not the same candidate's.")
    same_candidate: bool = Field(description="A resubmission through the same invitation (or by the same submitter).")


class CohortPosition(Frozen):
    """Where this grade stood among the graded submissions of the same assignment and version, when it was graded."""

    rank: int = Field(description="1 for the best score; ties share the better rank.")
    percentile: float | None = Field(
        description="Percentile rank (those below, plus half of those level, over n); None while n is below the minimum."
    )
    n: int = Field(description="Graded submissions of this assignment and version, this one included.")


class GradeReport(Frozen):
    """The graded report; its field names are a public contract."""

    id: str
    assignment: str
    source: SourceInfo
    status: Status
    reason: str = ""
    warnings: list[str] = Field(
        [], description="Findings that did not stop the grade, one sentence each: the file, the brief's sentence, "
        "the consequence (e.g. no migrations/: the migrations category fails, the rest is graded).",
    )
    score: float = 0.0
    max_score: float = 0.0
    categories: list[CategoryReport] = []
    timings: Timings = Timings()
    grader_version: str
    provenance: Provenance = Provenance()
    created_at: datetime
    logs: dict[str, str] = Field({}, description="Tails of build and app output, capped.")
    limits_hit: list[str] = Field([], description="Sandbox limits the submission ran into, e.g. memory, boot_time.")
    summary: Summary | None = Field(None, description="Why this score; None when nothing was graded.")
    review: CodeReview | None = Field(None, description="The static code review, beside the score, never inside it.")
    follow_ups: list[FollowUp] = []
    candidate_tests: CandidateTests | None = None
    similar: list[SimilarMatch] = Field(
        [], description="The closest earlier submissions of this assignment (top matches), as when graded."
    )
    cohort: CohortPosition | None = Field(None, description="Rank and percentile when graded; None when not placed.")
    earlier: EarlierGrade | None = Field(None, description="The grade this regrade replaced; None for a first grade.")
