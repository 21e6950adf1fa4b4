"""Invitations and candidates: limits, expiry, and a candidate sees only their own submission, trimmed."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import update

from grader.db.schema import invitations as invitations_table
from grader.db.store import utcnow
from grader.models import Status
from grader.submissions import PROGRESS_WORDS
from grader.web.users import Role
from tests.web.conftest import csrf_of


def _submit(client, token: str, repo: str, ref: str = ""):
    page = client.get(f"/i/{token}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(f"/i/{token}", data={"repository": repo, "ref": ref, "csrf_token": csrf_of(page.get_data(as_text=True))})


def _invite(invitations, max_uses: int = 2, days: float = 1) -> str:
    token, _ = invitations.create_invitation("tiny", candidate="Cleo", created_by=None, days=days, max_uses=max_uses)
    return token


def test_invitation_page_shows_the_brief_escaped(client, invitations):
    """The brief is shown as text: its markup is escaped."""
    html = client.get(f"/i/{_invite(invitations)}").get_data(as_text=True)
    assert "Serve hello at /" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_invitation_tokens_are_stored_hashed(invitations, store):
    """The link's token is not in the database."""
    token = _invite(invitations)
    with store.engine.connect() as conn:
        assert token not in json.dumps([list(map(str, r)) for r in conn.exec_driver_sql("SELECT * FROM invitations")])


def test_submit_records_enqueues_and_redirects_to_a_token_status_page(client, invitations, git_repo, store, enqueued):
    """A submission is recorded, queued once, and its status page is addressed by a token, not the id."""
    response = _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"})), "main")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/s/")
    [(sid, _job)] = enqueued
    assert sid not in location
    record = store.get(sid)
    assert record and record.status is Status.queued and record.ref == "main" and record.submitter == "Cleo"
    status = client.get(location + "/status.json").get_json()
    assert (status["progress"], status["queue_position"], status["final"]) == ("queued", 1, False)
    assert "report" not in status
    page = client.get(location)
    assert page.status_code == 200
    steps = re.findall(r'<li data-stage="([a-z_]+)">', page.get_data(as_text=True))
    assert tuple(steps) == PROGRESS_WORDS, "the page's steps are the stage labels' words"


def test_used_up_invitation_is_refused(client, invitations, git_repo, enqueued):
    """After max_uses submissions the link answers 410 and records nothing more."""
    token = _invite(invitations, max_uses=1)
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    assert _submit(client, token, repo).status_code == 302
    assert client.get(f"/i/{token}").status_code == 410
    assert len(enqueued) == 1


def test_expired_invitation_is_refused(client, invitations, store, enqueued):
    """An expired link answers 410, for GET and POST."""
    token = _invite(invitations)
    form = csrf_of(client.get(f"/i/{token}").get_data(as_text=True))
    with store.engine.begin() as conn:
        conn.execute(update(invitations_table).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(f"/i/{token}").status_code == 410
    assert client.post(f"/i/{token}", data={"repository": "x", "csrf_token": form}).status_code == 410
    assert enqueued == []


def test_a_withdrawn_invitation_is_refused_and_only_its_creator_or_an_admin_may_withdraw_it(app, users, invitations, signed_in):
    """Withdraw ends a link at once (410 from then on); another reviewer gets 404, an administrator may."""
    ann, bob = signed_in("ann@example.com"), signed_in("bob@example.com")
    admin, candidate = signed_in("root@example.com", Role.admin), app.test_client()
    creator = users.user_by_email("ann@example.com")
    links = [invitations.create_invitation("tiny", candidate=f"C{n}", created_by=creator.id, days=1, max_uses=2) for n in range(2)]
    (first, first_invite), (second, second_invite) = links

    def withdraw(client, invitation_id: int):
        form = csrf_of(client.get("/invitations").get_data(as_text=True))
        return client.post(f"/invitations/{invitation_id}/withdraw", data={"csrf_token": form})

    assert "Withdraw" not in bob.get("/invitations").get_data(as_text=True), "bob created none of them"
    assert withdraw(bob, first_invite.id).status_code == 404
    assert candidate.get(f"/i/{first}").status_code == 200
    assert ann.post(f"/invitations/{first_invite.id}/withdraw").status_code == 400, "withdrawing needs the CSRF token"
    assert withdraw(ann, first_invite.id).status_code == 302
    assert candidate.get(f"/i/{first}").status_code == 410
    assert withdraw(ann, first_invite.id).status_code == 404, "already ended"
    assert withdraw(admin, second_invite.id).status_code == 302
    assert candidate.get(f"/i/{second}").status_code == 410


def test_unknown_invitation_is_404(client):
    assert client.get("/i/not-a-token").status_code == 404


def test_minimum_interval_between_submissions(app, client, invitations, git_repo, enqueued):
    """A second submission within submit_interval_s is refused with a reason, and not counted."""
    grader = app.extensions["grader"]
    grader.settings = grader.settings.replace(submit_interval_s=3600)
    token = _invite(invitations, max_uses=3)
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    assert _submit(client, token, repo).status_code == 302
    second = _submit(client, token, repo)
    assert second.status_code == 200 and "Please wait" in second.get_data(as_text=True)
    assert len(enqueued) == 1
    assert invitations.invitation_by_token(token).uses == 1  # type: ignore[union-attr]


def test_rejected_source_is_not_counted(client, invitations, enqueued):
    """A source the intake refuses is explained and does not use up the invitation."""
    token = _invite(invitations, max_uses=1)
    response = _submit(client, token, "ftp://example.com/x.git")
    assert response.status_code == 200 and 'id="error"' in response.get_data(as_text=True)
    assert enqueued == [] and invitations.invitation_by_token(token).uses == 0  # type: ignore[union-attr]


def _finish(store, sid: str, reports_dir, candidate_sees_tests: bool = False) -> None:
    """Write a graded report for a record, as a worker would."""
    from grader.models import CategoryReport, GradeReport, SourceInfo, TestOutcome, TestReport

    report = GradeReport(
        id=sid, assignment="tiny", source=SourceInfo(url="x"), status=Status.graded, score=5, max_score=10,
        grader_version="t", created_at=utcnow(),
        categories=[CategoryReport(id="hello", title="Says hello", score=5, max_score=5, tests=[
            TestReport(id="test_hello.py::test_hello_secret_name", title="hidden title", outcome=TestOutcome.passed)]),
            CategoryReport(id="answer", title="Knows the answer", score=0, max_score=5, tests=[
                TestReport(id="test_answer.py::test_answer", title="answer", outcome=TestOutcome.failed, message="got 41")])],
    )
    folder = reports_dir / sid
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(report.model_dump_json())
    token = "t-" + sid
    assert store.acquire(sid, store.get(sid).job_id, "test", token)
    assert store.finish(sid, token, status=Status.graded, score=5, max_score=10,
                        report_path=str(folder / "report.json"), error=None)


def test_candidate_sees_scores_per_category_but_no_test_names(client, invitations, git_repo, store, enqueued, web_settings):
    """The finished status shows each category's score; hidden test names, messages and paths stay hidden."""
    location = _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"}))).headers["Location"]
    _finish(store, enqueued[0][0], web_settings.paths.reports_dir)
    body = client.get(location + "/status.json").get_data(as_text=True)
    data = json.loads(body)
    assert (data["progress"], data["final"], data["result"]["score"]) == ("graded", True, 5)
    assert [(c["id"], c["score"]) for c in data["result"]["categories"]] == [("hello", 5), ("answer", 0)]
    for secret in ("test_hello_secret_name", "hidden title", "got 41", str(web_settings.paths.reports_dir)):
        assert secret not in body


def test_a_candidate_token_cannot_read_another_submission(client, invitations, git_repo, enqueued):
    """A candidate's status link opens only their submission; ids, other tokens and reports are not reachable."""
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    mine = _submit(client, _invite(invitations), repo).headers["Location"]
    theirs = _submit(client, _invite(invitations), repo).headers["Location"]
    my_id, their_id = (sid for sid, _ in enqueued)
    assert client.get(mine + "/status.json").get_json()["id"] == my_id
    assert client.get(theirs + "/status.json").get_json()["id"] == their_id
    for path in (f"/s/{their_id}", f"/s/{their_id}/status.json", f"/s/{mine[3:-1]}/status.json"):
        assert client.get(path).status_code == 404
    for path in (f"/submissions/{their_id}", f"/submissions/{their_id}/report.html", f"/api/submissions/{their_id}"):
        assert client.get(path).status_code in (302, 401)


def test_reviewer_pages_list_report_compare_and_regrade(client, login, invitations, git_repo, store, enqueued, web_settings):
    """A reviewer sees the list sorted by score, the full report (test names included), compares two, regrades."""
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    for _ in range(2):
        _submit(client, _invite(invitations), repo)
    first, second = (sid for sid, _ in enqueued)
    _finish(store, first, web_settings.paths.reports_dir)
    login(Role.reviewer)
    listing = client.get("/submissions?assignment=tiny&sort=score&order=desc").get_data(as_text=True)
    assert listing.index(first) < listing.index(second)
    assert "test_hello_secret_name" in client.get(f"/submissions/{first}/report.html").get_data(as_text=True)
    compared = client.get(f"/compare?id={first}&id={second}").get_data(as_text=True)
    assert "Says hello" in compared and "5.0 / 5.0" in compared
    page = client.get(f"/submissions/{first}").get_data(as_text=True)
    assert client.post(f"/submissions/{first}/regrade", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert store.get(first).status is Status.queued and len(enqueued) == 3  # type: ignore[union-attr]
