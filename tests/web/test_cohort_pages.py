"""The cohort on the web (#15): the reviewer's report shows today's rank and similar submissions, the assignment's
cohort page and its API, two submissions' code side by side, deleting; the candidate never sees any of it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader.cohort.files import keep_snapshot
from grader.cohort.place import place
from grader.cohort.store import CohortStore, Pair
from grader.cohort.view import CohortView
from grader.db.store import Store, utcnow
from grader.models import CategoryReport, GradeReport, Provenance, SourceInfo, Status, TestOutcome, TestReport
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.report import write_report
from grader.web.users import Role
from tests.disguise import RENAMES, disguised_copy
from tests.web.conftest import PASSWORD, csrf_of
from tests.web.test_browser import ARTIFACTS, browser, live_app  # noqa: F401 (fixtures)
from tests.web.test_candidate import _invite, _submit

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"
TESTS = {"hello": ("test_hello", "test_root"), "answer": ("test_answer",)}
WITHOUT_CODE = {"s-low": 40, "s-mid1": 55, "s-mid2": 58, "s-good": 72}
"""Graded submissions whose code was not kept: they count in the rank and the histogram only."""


def _report(sid: str, score: float, failed: tuple[str, ...] = (), version: str = "1") -> GradeReport:
    categories = [
        CategoryReport(
            id=cid, title=cid.title(), score=score * share, max_score=100 * share,
            tests=[TestReport(id=f"test_{cid}.py::{name}", title=name.replace("_", " "),
                              outcome=TestOutcome.failed if name in failed else TestOutcome.passed) for name in names],
        )
        for (cid, names), share in zip(TESTS.items(), (0.6, 0.4), strict=True)
    ]
    return GradeReport(id=sid, assignment="tiny", source=SourceInfo(url="https://example.com/r.git"), status=Status.graded,
                       score=score, max_score=100, grader_version="0", created_at=datetime.now(UTC),
                       provenance=Provenance(assignment_version=version), categories=categories)


def grade(store: Store, settings: Settings, sid: str, score: float, tree: Path | None, failed: tuple[str, ...] = (),
          version: str = "1") -> GradeReport:
    """Record (unless the candidate's form did), keep the code, place and publish, as a worker does."""
    if store.get(sid) is None:
        store.create(sid, source="https://example.com/r.git", ref=None, assignment="tiny", submitter=sid, job_id=f"j-{sid}")
    kept = keep_snapshot(tree, settings.paths.snapshots_dir / sid) if tree is not None else None
    report = place(_report(sid, score, failed, version), kept, CohortStore(store.engine), settings)
    folder = write_report(report, settings.paths.reports_dir, pdf=False)
    record = store.get(sid)
    assert record and store.acquire(sid, record.job_id, "test", "t-" + sid)
    assert store.finish(sid, "t-" + sid, status=report.status, score=report.score, max_score=report.max_score,
                        report_path=str(folder / "report.json"), error=None)
    return report


@pytest.fixture
def cohort(store: Store) -> CohortStore:
    return CohortStore(store.engine)


@pytest.fixture
def seeded(store, cohort, web_settings, short_tmp):
    """Seven graded: the reference, its disguised copy (flagged), an independent single-module solution and four
    without kept code, two of them one candidate's resubmissions."""
    grade(store, web_settings, "s-reference", 100, SOLUTIONS / "reference")
    copy = disguised_copy(SOLUTIONS / "reference", short_tmp / "jotter", RENAMES)
    grade(store, web_settings, "s-copy", 90, copy, failed=("test_answer",))
    grade(store, web_settings, "s-single", 85, SOLUTIONS / "single-module", failed=("test_root",))
    for sid, score in WITHOUT_CODE.items():
        grade(store, web_settings, sid, score, None, failed=("test_answer", "test_root") if score < 60 else ("test_answer",))
    cohort.put_pairs([Pair(a="s-mid1", b="s-mid2", assignment="tiny", score=0.55, a_in_b=0.55, b_in_a=0.52, shared=120,
                           same_candidate=True, computed_at=utcnow())])
    return cohort


def test_reviewer_report_shows_todays_rank_and_matches_linked_to_the_side_by_side(client, login, seeded, web_settings):
    """The reference was graded first (alone, nothing similar); its page shows the cohort of now, the copy flagged as a
    prompt with a link to the two side by side, the independent solution unflagged; report.json is left as graded."""
    stored = json.loads((web_settings.paths.reports_dir / "s-reference" / "report.json").read_text())
    assert stored["similar"] == [] and stored["cohort"] == {"rank": 1, "percentile": None, "n": 1}
    login(Role.reviewer)
    html = client.get("/submissions/s-reference").get_data(as_text=True)
    section = html[html.index('id="cohort"'):html.index('id="provenance"')]
    assert "Rank <strong>1</strong> of 7 graded" in section and "percentile <strong>92.9</strong>" in section
    assert "never changes the score" in section and 'href="/assignments/tiny/cohort"' in section
    assert 'href="/assignments/tiny/similar/s-reference/s-copy">s-copy</a>' in section
    assert "similar to s-copy: review before deciding" in section
    single = re.search(r'<li class="match"><a href="/assignments/tiny/similar/s-reference/s-single">s-single</a> '
                       r"<strong>(\d+) %", section)
    assert single and int(single.group(1)) < 50 and "similar to s-single" not in section
    assert "copied" not in html.lower() and "plagiar" not in html.lower()


def test_the_stored_report_words_no_match_and_an_early_percentile(web_settings, seeded):
    """report.html as written at the grade (the PDF's words too): nothing similar then, no percentile below the minimum."""
    standalone = (web_settings.paths.reports_dir / "s-reference" / "report.html").read_text()
    assert "no other submission shares more than 10 % of its code" in standalone
    assert "Rank <strong>1</strong> of 1 graded · percentile shown once more submissions are graded" in standalone
    copy = (web_settings.paths.reports_dir / "s-copy" / "report.html").read_text()
    assert "similar to s-reference: review before deciding" in copy and "<a href" not in copy.split('id="cohort"')[1][:600]


def test_a_resubmission_is_labelled_not_flagged(client, login, seeded):
    login(Role.reviewer)
    html = client.get("/submissions/s-mid2").get_data(as_text=True)
    assert "same candidate (resubmission)" in html and "review before deciding" not in html
    assert "percentile shown" not in html, "seven graded: the percentile is shown"


def test_the_candidate_of_a_flagged_submission_sees_no_similarity_or_rank(client, invitations, git_repo, store, enqueued,
                                                                         web_settings, cohort, short_tmp):
    """candidate_view reads only scores, rubric lines and their own tests: no other id, no similar, no rank."""
    grade(store, web_settings, "s-reference", 100, SOLUTIONS / "reference")
    location = _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"}))).headers["Location"]
    sid = enqueued[-1][0]
    placed = grade(store, web_settings, sid, 90, disguised_copy(SOLUTIONS / "reference", short_tmp / "jotter", RENAMES))
    assert [(m.submission, m.flagged) for m in placed.similar] == [("s-reference", True)]
    for body in (client.get(location).get_data(as_text=True), client.get(location + "/status.json").get_data(as_text=True)):
        lowered = body.lower()
        assert "s-reference" not in body and "similar" not in lowered
        assert not any(word in lowered for word in ("percentile", "rank", "cohort"))
    assert json.loads(client.get(location + "/status.json").data)["result"]["score"] == 90


def _bars(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<rect class="bar"[^>]* data-count="(\d+)"', html)]


def test_the_cohort_page_has_the_histogram_rates_hardest_tests_and_pairs(client, login, seeded):
    """One bar per non-empty bin with its count, eleven axis labels; categories, failure rates with n; pairs linked."""
    login(Role.reviewer)
    response = client.get("/assignments/tiny/cohort")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "script-src" not in response.headers["Content-Security-Policy"]
    assert "<strong>7</strong> graded" in html and "mean <strong>71.4 %</strong>" in html and "median <strong>72 %</strong>" in html
    svg = html[html.index('<svg class="histogram"'):html.index("</svg>")]
    assert _bars(svg) == [1, 2, 1, 1, 2]
    assert re.findall(r'<text class="count"[^>]*>(\d+)</text>', svg) == ["1", "2", "1", "1", "2"]
    assert [int(x) for x in re.findall(r'<text class="tick"[^>]*>(\d+)</text>', svg)] == list(range(0, 101, 10))
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', svg)]
    assert heights[1] == heights[4] == 2 * heights[0]
    assert "<td>Hello <small>hello</small></td><td>" in html
    hardest = html[html.index('id="hardest"'):]
    row = "<td>test answer<br><small>test_answer.py::test_answer</small></td><td>answer</td><td>5 of 7</td><td>71.4 %</td>"
    assert row in hardest
    pairs = html[html.index('id="pairs"'):]
    assert 'href="/assignments/tiny/similar/s-copy/s-reference">side by side</a>' in pairs
    assert pairs.index("s-copy") < pairs.index("s-mid1"), "closest first"
    assert "same candidate (resubmission)" in pairs and "similar: review before deciding" in pairs
    assert 'id="versions"' not in html


def test_a_version_picker_when_the_cohort_has_versions(client, login, seeded, store, web_settings):
    grade(store, web_settings, "s-v2", 50, None, version="2")
    login(Role.admin)
    latest = client.get("/assignments/tiny/cohort").get_data(as_text=True)
    assert 'id="versions"' in latest and "version 2" in latest and "<strong>1</strong> graded" in latest
    older = client.get("/assignments/tiny/cohort?version=1").get_data(as_text=True)
    assert "<strong>7</strong> graded" in older and '<option value="1" selected>' in older
    assert "<strong>1</strong> graded" in client.get("/assignments/tiny/cohort?version=nope").get_data(as_text=True)
    assert 'href="/assignments/tiny/cohort"' in client.get("/admin/assignments").get_data(as_text=True)
    assert 'href="/assignments/tiny/cohort"' in client.get("/submissions?assignment=tiny").get_data(as_text=True)


def test_only_staff_reach_the_cohort_pages_and_only_admins_delete(app, client, seeded, invitations, git_repo, signed_in,
                                                                  users, tokens):
    """Anonymous and candidates are sent to log in (the API answers 401); reviewers read; deleting needs an administrator."""
    _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"})))  # a candidate's own client
    pages = ["/assignments/tiny/cohort", "/assignments/tiny/similar/s-copy/s-reference"]
    for anonymous in (client, app.test_client()):
        for path in pages:
            refused = anonymous.get(path)
            assert refused.status_code == 302 and "/login" in refused.headers["Location"], path
    assert app.test_client().get("/api/assignments/tiny/cohort").status_code == 401
    reviewer = signed_in("rita@example.com")
    for path in pages:
        assert reviewer.get(path).status_code == 200, path
    assert "Delete" not in reviewer.get("/submissions/s-copy").get_data(as_text=True)
    form = csrf_of(reviewer.get("/submissions/s-copy").get_data(as_text=True))
    assert reviewer.post("/submissions/s-copy/delete", data={"csrf_token": form, "confirm": "1"}).status_code == 403
    rita = users.user_by_email("rita@example.com")
    refused = client.delete("/api/submissions/s-copy", headers={"Authorization": f"Bearer {tokens.create_token(rita.id, 'x')}"})
    assert refused.status_code == 403 and refused.is_json
    assert seeded.member("s-copy") is not None
    for missing in ("/assignments/nope/cohort", "/assignments/tiny/similar/s-copy/s-nope",
                    "/assignments/tiny/similar/s-copy/s-copy", "/assignments/other/similar/s-copy/s-reference"):
        assert reviewer.get(missing).status_code == 404, missing


def test_the_cohort_api_answers_the_view(client, users, tokens, seeded):
    user = users.create_user("bot@example.com", "password123", Role.reviewer)
    auth = {"Authorization": f"Bearer {tokens.create_token(user.id, 'ci')}"}
    body = client.get("/api/assignments/tiny/cohort", headers=auth).get_json()
    assert set(body) == set(CohortView.model_fields)
    assert (body["assignment"], body["version"], body["n"], body["rank_min_n"]) == ("tiny", "1", 7, 5)
    assert [b["count"] for b in body["histogram"]] == [0, 0, 0, 0, 1, 2, 0, 1, 1, 2]
    assert set(body["histogram"][0]) == {"low", "high", "count"}
    assert sorted((p["a"], p["b"], p["flagged"], p["same_candidate"]) for p in body["pairs"]) == [
        ("s-copy", "s-reference", True, False), ("s-mid1", "s-mid2", False, True)]
    assert [p["score"] for p in body["pairs"]] == sorted((p["score"] for p in body["pairs"]), reverse=True)
    assert {"id", "category", "title", "failed", "n", "failure_rate"} == set(body["hardest"][0])
    assert {"id", "title", "mean_percent", "pass_rate"} == set(body["categories"][0])
    missing = client.get("/api/assignments/nope/cohort", headers=auth)
    assert missing.status_code == 404 and missing.is_json
    live = client.get("/api/submissions/s-reference/report", headers=auth).get_json()
    assert live["cohort"]["n"] == 7 and live["similar"][0]["submission"] == "s-copy" and live["similar"][0]["flagged"]


def test_delete_through_the_api_removes_the_pairs_everywhere(client, users, tokens, seeded, store, web_settings, invitations,
                                                             git_repo, enqueued):
    """An administrator's token deletes: the record, its report, its kept code and every pair naming it; again is 404;
    a submission still queued is 409."""
    admin = users.create_user("root@example.com", "password123", Role.admin)
    auth = {"Authorization": f"Bearer {tokens.create_token(admin.id, 'ops')}"}
    assert {p.other("s-copy") for p in seeded.pairs_of("s-copy")} >= {"s-reference"}
    deleted = client.delete("/api/submissions/s-reference", headers=auth)
    assert deleted.status_code == 200 and deleted.get_json() == {"deleted": "s-reference"}
    assert all("s-reference" not in (p.a, p.b) for p in seeded.pairs_of("s-copy")) and seeded.pairs_of("s-reference") == []
    assert seeded.member("s-reference") is None and store.get("s-reference") is None
    assert not (web_settings.paths.reports_dir / "s-reference").exists()
    assert not (web_settings.paths.snapshots_dir / "s-reference").exists()
    live = client.get("/api/submissions/s-copy/report", headers=auth).get_json()
    assert "s-reference" not in [m["submission"] for m in live["similar"]] and live["cohort"]["n"] == 6
    again = client.delete("/api/submissions/s-reference", headers=auth)
    assert again.status_code == 404 and again.is_json
    _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"})))
    busy = client.delete(f"/api/submissions/{enqueued[-1][0]}", headers=auth)
    assert busy.status_code == 409 and "being graded" in busy.get_json()["error"]


def test_an_administrator_deletes_from_the_submission_page(client, login, seeded, store):
    """A POST with the CSRF token and the confirmation box; without the box nothing is deleted."""
    login(Role.admin)
    page = client.get("/submissions/s-copy").get_data(as_text=True)
    assert 'id="delete"' in page
    token = csrf_of(page)
    assert client.post("/submissions/s-copy/delete", data={"confirm": "1"}).status_code == 400, "needs the CSRF token"
    client.post("/submissions/s-copy/delete", data={"csrf_token": token})
    assert store.get("s-copy") is not None
    done = client.post("/submissions/s-copy/delete", data={"csrf_token": token, "confirm": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/submissions")
    assert store.get("s-copy") is None and seeded.pairs_of("s-copy") == []
    client.get("/submissions")  # the flash message is shown there
    assert "s-copy" not in client.get("/submissions/s-reference").get_data(as_text=True)


def test_side_by_side_highlights_the_matched_code_escaped(client, login, seeded):
    """Matched files in two columns, the shared spans in <mark>; the candidates' markup shows as text."""
    login(Role.reviewer)
    response = client.get("/assignments/tiny/similar/s-copy/s-reference")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "script-src" not in response.headers["Content-Security-Policy"]
    assert "notes_app/" in html and "jotter/" in html
    assert html.count("<mark>") >= 10 and 'class="filepair"' in html
    assert re.search(r"Stored score</th><td>\d+ %", html) and "Compared now" in html
    assert "-&gt; dict[str, Any]:" in html and "-> dict[str, Any]:" not in html
    assert "review before deciding" in html


def test_side_by_side_escapes_markup_in_the_code(client, login, store, web_settings, short_tmp):
    """A candidate's `</pre><script>` stays text."""
    evil = "HTML = '</pre><script>alert(1)</script>'\n"
    trees = []
    for n in (1, 2):
        tree = short_tmp / f"evil{n}"
        (tree / "app").mkdir(parents=True)
        (tree / "app" / "views.py").write_text(evil + (SOLUTIONS / "single-module" / "notes.py").read_text())
        trees.append(tree)
    grade(store, web_settings, "s-evil1", 70, trees[0])
    grade(store, web_settings, "s-evil2", 70, trees[1])
    login(Role.reviewer)
    html = client.get("/assignments/tiny/similar/s-evil1/s-evil2").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;/pre&gt;&lt;script&gt;alert(1)" in html and "<mark>" in html


def test_side_by_side_of_expired_or_misplaced_code_shows_the_stored_score(client, login, seeded, store):
    """Code past its retention is gone: the page says so with the stored score; a kept path outside snapshots_dir is
    never read."""
    login(Role.reviewer)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cohort_members SET snapshot_path = NULL WHERE submission_id = 's-reference'")
        conn.exec_driver_sql("UPDATE cohort_members SET snapshot_path = '/etc' WHERE submission_id = 's-single'")
    expired = client.get("/assignments/tiny/similar/s-copy/s-reference").get_data(as_text=True)
    stored = round(100 * seeded.pair("s-copy", "s-reference").score)
    assert "The kept code of s-reference has expired" in expired and f"only the stored score is left, {stored} %" in expired
    assert "<mark>" not in expired
    outside = client.get("/assignments/tiny/similar/s-single/s-reference").get_data(as_text=True)
    assert "s-single and s-reference has expired" in outside and "root:" not in outside


@pytest.mark.slow
def test_cohort_and_side_by_side_in_a_browser(live_app, browser, seeded, users):  # noqa: F811 (fixtures)
    """The cohort page and the side-by-side page in Chromium under their CSP: the histogram drawn, nothing blocked."""
    ARTIFACTS.mkdir(exist_ok=True)
    users.create_user("rita@example.com", PASSWORD, Role.reviewer)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type in ("error", "warning") and "favicon" not in message.location.get("url", "") else None)
    page.goto(live_app + "/assignments/tiny/cohort")
    page.fill("input[name=email]", "rita@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/assignments/tiny/cohort$"))
    box = page.locator("#histogram").bounding_box()
    assert box and box["width"] > 500 and page.locator("#histogram rect.bar").count() == 5
    page.screenshot(path=str(ARTIFACTS / "web-6-cohort-15.png"), full_page=True)
    page.click("#pairs a:text('side by side')")
    page.wait_for_url(re.compile(r".*/similar/s-copy/s-reference$"))
    assert page.locator("mark").count() >= 10
    left, right = (page.locator(".filepair .columns > div").nth(i).bounding_box() for i in (0, 1))
    assert left and right and right["x"] > left["x"] + 300, "two columns"
    page.screenshot(path=str(ARTIFACTS / "web-7-similar-15.png"), full_page=False)
    page.goto(live_app + "/submissions/s-reference")
    page.locator("#cohort").scroll_into_view_if_needed()
    page.locator("#cohort").screenshot(path=str(ARTIFACTS / "web-8-report-cohort-15.png"))
    assert problems == [], problems
