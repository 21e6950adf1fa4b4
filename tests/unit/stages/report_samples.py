"""Reports built by hand as the pipeline would make them: flawed, perfect, build_failed and infra_error.

The flawed one has every part of issue #14 filled in, hostile text included (a response body with a
`<script>`, a control character XML 1.0 forbids), so the renderers and exports can be checked against it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from grader.assignments.model import Assignment, Category
from grader.models import (
    CandidateTests,
    CategoryReport,
    CodeReview,
    Exchange,
    Finding,
    FollowUp,
    GradeReport,
    LostTest,
    Provenance,
    Severity,
    SourceInfo,
    Status,
    SubmissionRequest,
    Summary,
    TestOutcome,
    TestReport,
    Timings,
)
from grader.stages.report import build_report, infra_report

CREATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
COMMIT = "3f1c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a"
HOSTILE_BODY = '<h1>Forbidden</h1><script>alert("owned")</script>\x07'
ASSIGNMENT = Assignment(id="flask-notes", title="Flask notes", version="1", categories=[
    Category(id="auth", title="Authentication", weight=25),
    Category(id="access_split", title="API 401 versus page redirect", weight=25),
    Category(id="migrations", title="Database migrations", weight=25),
    Category(id="concurrency", title="Concurrency under four Gunicorn workers", weight=25),
])
REQUEST = SubmissionRequest(id="s-20261201-flawed", source="https://git.example.com/cleo/notes.git", ref="main",
                            assignment="flask-notes")
SOURCE = SourceInfo(url=REQUEST.source, ref="main", commit=COMMIT)
PROVENANCE = Provenance(commit=COMMIT, requirements_sha256="ab" * 32, image_id="sha256:" + "cd" * 32, assignment_version="1",
                        deps_cached=True, dependency_format="requirements", dependency_files=["requirements.txt"],
                        dependencies_sha256="ef" * 32)
TIMINGS = Timings(intake_s=0.4, preflight_s=0.01, build_s=3.2, boot_s=2.1, tests_s=41.5, reruns_s=3.3, review_s=0.8,
                  candidate_tests_s=6.2, report_s=0.1, total_s=48.9)

LOGIN = Exchange(method="POST", url="http://app/login", request_body="username=alice&password=password123&next=https://evil.example/",
                 status=302, response_headers={"Location": "https://evil.example/", "Content-Type": "text/html; charset=utf-8"},
                 response_body="<p>Redirecting...</p>")
FOREIGN = Exchange(method="GET", url="http://app/api/notes/2", status=403,
                   response_headers={"Content-Type": "text/html; charset=utf-8"}, response_body=HOSTILE_BODY)
COOKIE = Exchange(method="POST", url="http://app/login", request_body="username=alice&password=password123", status=302,
                  response_headers={"Set-Cookie": "session=eyJfaWQiOi...; Path=/", "Location": "/notes"})
WORKER = Exchange(method="GET", url="http://app/api/me", status=401, response_headers={"Content-Type": "application/json"},
                  response_body='{"error": "unauthorized"}')


def _test(test_id: str, title: str, outcome: TestOutcome = TestOutcome.passed, points: float = 2.5, **extra: object) -> TestReport:
    return TestReport(id=test_id, title=title, outcome=outcome, points=points, duration_s=0.12, **extra)  # type: ignore[arg-type]


FAILED = TestOutcome.failed
FLAWED_CATEGORIES = [
    CategoryReport(id="auth", title="Authentication", score=10, max_score=25, tests=[
        _test("test_auth.py::test_register_and_login", "Register, then log in", points=2.5),
        _test("test_auth.py::test_password_not_stored_in_plaintext", "Passwords are not stored in plain text", FAILED, 10,
              message="users.password holds 'password123' exactly as typed"),
        _test("test_auth.py::test_logout_ends_the_session", "Logout ends the session"),
        _test("test_auth.py::test_session_cookie_is_httponly_and_samesite", "The session cookie is HttpOnly and SameSite",
              FAILED, message="Set-Cookie has no HttpOnly and no SameSite", exchanges=[COOKIE]),
        _test("test_auth.py::test_get_missing_or_foreign_note_is_404", "A foreign note looks like a missing one", FAILED,
              message="GET /api/notes/2 (Bob's note) answered 403, a missing one 404", exchanges=[FOREIGN]),
    ]),
    CategoryReport(id="access_split", title="API 401 versus page redirect", score=15, max_score=25, tests=[
        _test("test_access_split.py::test_api_answers_401_json", "The API answers 401 JSON", points=5),
        _test("test_access_split.py::test_pages_redirect_to_login", "Pages redirect to the login form", points=5),
        _test("test_access_split.py::test_login_refuses_open_redirect", "Login refuses an off-site next", FAILED, 10,
              message="POST /login with next=https://evil.example/ redirected there", exchanges=[LOGIN]),
        _test("test_access_split.py::test_login_form_keeps_next", "The login form keeps next", TestOutcome.skipped, 0,
              message="no login form found"),
    ]),
    CategoryReport(id="migrations", title="Database migrations", score=15, max_score=25, tests=[
        _test("test_migrations.py::test_upgrade_on_empty_database_creates_users_and_notes", "Upgrade from empty", points=5),
        _test("test_migrations.py::test_db_check_reports_no_changes", "Models match the migrations", FAILED, 5,
              message="flask db check: New upgrade operations detected: [('add_column', 'notes', 'word_count')]"),
        _test("test_migrations.py::test_downgrade_base_then_upgrade", "Downgrade to base and upgrade again", points=5),
        _test("test_migrations.py::test_data_migration_fills_word_count", "The data migration fills word_count",
              TestOutcome.error, 5, message="sqlite3.OperationalError: no such column: notes.word_count"),
        _test("test_migrations.py::test_app_does_not_create_tables_at_start", "The app does not create tables", points=5),
    ]),
    CategoryReport(id="concurrency", title="Concurrency under four Gunicorn workers", score=8, max_score=25, tests=[
        _test("test_concurrency.py::test_session_valid_on_every_worker", "A session is valid on every worker", FAILED, 10,
              message="/api/me answered 401 on 9 of 12 requests after login", exchanges=[WORKER], rerun=FAILED),
        _test("test_concurrency.py::test_concurrent_likes", "Concurrent likes are all counted", FAILED, 7,
              message="50 likes, 47 counted", rerun=TestOutcome.passed),
        _test("test_concurrency.py::test_concurrent_registrations", "Concurrent registrations of one name", points=4),
        _test("test_concurrency.py::test_concurrent_note_creation", "Concurrent note creation", points=4),
    ]),
]

SEC = Severity.security


def _lost(category: str, test: str, title: str, points: float, rubric: str, severity: Severity, evidence: str,
          reproduce: str, intermittent: bool = False) -> LostTest:
    return LostTest(category=category, test=test, title=title, points=points, rubric=rubric, severity=severity,
                    evidence=evidence, reproduce=reproduce, intermittent=intermittent)


LOST = [
    _lost("auth", "test_auth.py::test_password_not_stored_in_plaintext", "Passwords are not stored in plain text", 10,
          "Passwords are never stored in plain text, and hashes are salted.", SEC,
          "SELECT username, password FROM users;\nalice|password123", "sqlite3 /tmp/notes.db 'SELECT * FROM users'"),
    _lost("access_split", "test_access_split.py::test_login_refuses_open_redirect", "Login refuses an off-site next", 10,
          "`POST /login` never sends the browser to an off-site `next`.", SEC,
          "POST /login next=https://evil.example/\n-> 302 Location: https://evil.example/",
          "curl -si -X POST http://127.0.0.1:8000/login --data 'username=alice&password=password123&next=https://evil.example/'"),
    _lost("concurrency", "test_concurrency.py::test_session_valid_on_every_worker", "A session is valid on every worker", 10,
          "A session made on one worker is valid on every other worker.", SEC,
          'GET /api/me -> 401 {"error": "unauthorized"} (9 of 12)',
          "for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} ' -b jar.txt http://127.0.0.1:8000/api/me; done"),
    _lost("auth", "test_auth.py::test_get_missing_or_foreign_note_is_404", "A foreign note looks like a missing one", 2.5,
          "Notes are private. A note that belongs to someone else must look exactly like a missing one.", SEC,
          "GET /api/notes/2 -> 403\n" + HOSTILE_BODY, "curl -si -b jar.txt http://127.0.0.1:8000/api/notes/2"),
    _lost("auth", "test_auth.py::test_session_cookie_is_httponly_and_samesite", "The session cookie is HttpOnly and SameSite",
          2.5, "The session cookie is `HttpOnly` and has a `SameSite` attribute.", SEC,
          "Set-Cookie: session=eyJfaWQiOi...; Path=/", "curl -si -X POST http://127.0.0.1:8000/login ... | grep -i set-cookie"),
    _lost("concurrency", "test_concurrency.py::test_concurrent_likes", "Concurrent likes are all counted", 7,
          "concurrent likes", Severity.robustness, "50 likes, 47 counted",
          "seq 50 | xargs -P 10 -I{} curl -s -X POST -b jar.txt http://127.0.0.1:8000/api/notes/1/like", intermittent=True),
    _lost("migrations", "test_migrations.py::test_db_check_reports_no_changes", "Models match the migrations", 5,
          "upgrade from empty, `db check`, downgrade and re-upgrade, the `word_count` data migration", Severity.correctness,
          "New upgrade operations detected: [('add_column', 'notes', 'word_count')]",
          "flask --app wsgi db upgrade && flask --app wsgi db check"),
    _lost("migrations", "test_migrations.py::test_data_migration_fills_word_count", "The data migration fills word_count", 5,
          "Notes inserted at the previous revision must have the correct `word_count` after `flask db upgrade`.",
          Severity.correctness, "sqlite3.OperationalError: no such column: notes.word_count",
          "flask --app wsgi db upgrade && flask --app wsgi db downgrade -1 ... && flask --app wsgi db upgrade"),
]
SUMMARY = Summary(
    verdict="48 / 100. Three security flaws: plain-text passwords, an open redirect after login, and sessions that "
            "do not survive a second Gunicorn worker (a per-process secret key). The migrations miss the word_count column.",
    lost=LOST,
    caveats=["Concurrent likes failed, then passed when re-run: likely a race (the score keeps the failure).",
             "The app hit the memory limit once during the concurrency suite."],
)
REVIEW = CodeReview(
    findings=[
        Finding(rule="ruff:S105", severity=SEC, file="notes/__init__.py", line=12, snippet='app.secret_key = "dev"',
                message="A hard-coded secret key: anyone who reads the repository can forge sessions."),
        Finding(rule="grader:per-process-secret", severity=SEC, file="notes/__init__.py", line=11,
                snippet="app.config['SECRET_KEY'] = os.urandom(24)",
                message="A secret made at start-up differs in every Gunicorn worker: sessions break across workers."),
        Finding(rule="ruff:S608", severity=SEC, file="notes/api.py", line=88,
                snippet='db.session.execute(text(f"SELECT * FROM notes WHERE title LIKE \'%{q}%\'"))',
                message="SQL built from request input with an f-string: SQL injection."),
        Finding(rule="ruff:B006", severity=Severity.correctness, file="notes/models.py", line=40,
                snippet="def tags(self, extra=[]):", message="A mutable default argument is shared between calls."),
        Finding(rule="grader:long-function", severity=Severity.maintainability, file="notes/api.py", line=120,
                message="update_note is 94 lines long with a cyclomatic complexity of 17."),
    ],
    metrics={"python_files": 9, "python_lines": 812, "test_files": 2, "test_lines": 140, "routes": 14, "templates": 6,
             "migration_files": 1, "largest_module": "notes/api.py", "largest_module_lines": 341,
             "max_complexity_at": "notes/api.py:120 update_note", "max_complexity": 17, "maintainability_index": 58.3,
             "findings": 5, "findings_left_out": 0, "skipped_files": 0},
    duration_s=0.8,
)
FOLLOW_UPS = [
    FollowUp(question="How does your app store passwords, and what would you change before going live?",
             because=["test_auth.py::test_password_not_stored_in_plaintext", "ruff:S105"],
             strong_answer=["a slow salted hash (werkzeug's scrypt or pbkdf2, bcrypt, argon2)",
                            "a migration that rehashes on the next login", "no secret in the repository"]),
    FollowUp(question="Sessions worked with one worker and failed with four. Why?",
             because=["test_concurrency.py::test_session_valid_on_every_worker", "grader:per-process-secret"],
             strong_answer=["each worker made its own os.urandom key",
                            "the key comes from the environment, the same for every worker"]),
    FollowUp(question="Walk me through what happens, request by request, when a user logs in with ?next=...",
             because=["access_split"],
             strong_answer=["only relative paths on the same host are followed", "urlparse netloc check"]),
    FollowUp(question="If two requests like the same note at the same instant, what does the database see?",
             because=["depth"],
             strong_answer=["read-modify-write race", "an atomic UPDATE ... SET likes = likes + 1 or a unique row per like"],
             depth=True),
]
CANDIDATE_TESTS = CandidateTests(
    ran=True, passed=11, failed=2, errors=0, skipped=1, coverage_percent=63.4, duration_s=6.2,
    failing=["tests/test_notes.py::test_delete_note", "tests/test_auth.py::test_logout_clears_cookie"],
    output_tail="FAILED tests/test_notes.py::test_delete_note - assert 500 == 204\n"
                "FAILED tests/test_auth.py::test_logout_clears_cookie - KeyError: 'session'\n"
                "========= 2 failed, 11 passed, 1 skipped in 5.81s =========",
)


def _at(report: GradeReport) -> GradeReport:
    return report.model_copy(update={"created_at": CREATED})


def flawed() -> GradeReport:
    """48 / 100 with security flaws, an intermittent test, review findings, follow-ups and the candidate's tests."""
    return _at(build_report(
        REQUEST, ASSIGNMENT, status=Status.graded, source=SOURCE, categories=FLAWED_CATEGORIES, timings=TIMINGS,
        provenance=PROVENANCE, logs={"app": "[INFO] Booting worker with pid: 8\n[ERROR] Worker (pid:9) was sent SIGKILL!"},
        warnings=["`migrations/versions/` has one revision: the brief asks for the word_count data migration."],
        summary=SUMMARY, review=REVIEW, follow_ups=FOLLOW_UPS, candidate_tests=CANDIDATE_TESTS,
    ).model_copy(update={"limits_hit": ["memory"]}))


def perfect() -> GradeReport:
    """Every hidden test passed; no review findings; the repository has no tests of its own."""
    categories = [
        CategoryReport(id=c.id, title=c.title, score=c.max_score, max_score=c.max_score, tests=[
            t.model_copy(update={"outcome": TestOutcome.passed, "message": "", "exchanges": [], "rerun": None}) for t in c.tests])
        for c in FLAWED_CATEGORIES
    ]
    request = REQUEST.model_copy(update={"id": "s-20261201-perfect"})
    return _at(build_report(
        request, ASSIGNMENT, status=Status.graded, source=SOURCE, categories=categories, timings=TIMINGS, provenance=PROVENANCE,
        summary=Summary(verdict="100 / 100: every hidden test passed."),
        review=CodeReview(metrics={"python_files": 6, "python_lines": 402}),
        follow_ups=[FOLLOW_UPS[-1]], candidate_tests=CandidateTests(ran=False, note="the repository has no tests"),
    ))


def build_failed() -> GradeReport:
    """The dependencies did not install: no categories, no summary, no review."""
    request = REQUEST.model_copy(update={"id": "s-20261201-build"})
    return _at(build_report(
        request, ASSIGNMENT, status=Status.build_failed, source=SOURCE,
        reason="psycopg2==2.8.6 has no wheel for Python 3.12 and needs pg_config to build; pin psycopg2-binary>=2.9",
        logs={"build": "error: subprocess-exited-with-error\n  × Getting requirements to build wheel did not run successfully."},
    ))


def infra_error() -> GradeReport:
    """The engine went away: the grader's failure, not the candidate's."""
    request = REQUEST.model_copy(update={"id": "s-20261201-infra"})
    return _at(infra_report(request, ASSIGNMENT, "the Docker engine stopped answering during boot", source=SOURCE))


def legacy_json() -> dict[str, object]:
    """A report.json written before issue #14: no summary, review, follow-ups, candidate tests, points or re-runs."""
    data = flawed().model_dump(mode="json")
    for key in ("summary", "review", "follow_ups", "candidate_tests"):
        data.pop(key)
    for category in data["categories"]:  # type: ignore[attr-defined]
        for test in category["tests"]:
            test.pop("points")
            test.pop("rerun")
    return data
