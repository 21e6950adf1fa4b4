"""The JSON API with a Bearer token: create an invitation, submit, read the status and the report."""

from __future__ import annotations

from grader.web.accounts import Role
from tests.web.test_candidate import _finish


def test_api_invitation_submit_status_report(client, accounts, git_repo, store, enqueued, web_settings):
    """A token of a reviewer creates an invitation, submits, reads the status and, once graded, the report."""
    user = accounts.create_user("bot@example.com", "password123", Role.reviewer)
    auth = {"Authorization": f"Bearer {accounts.create_api_token(user.id, 'ci')}"}
    invite = client.post("/api/invitations", json={"assignment": "tiny", "candidate": "Cleo", "max_uses": 2}, headers=auth)
    assert invite.status_code == 201 and "/i/" in invite.get_json()["url"]
    assert client.get(invite.get_json()["url"].split("localhost", 1)[1]).status_code == 200
    assert client.post("/api/invitations", json={"assignment": "nope"}, headers=auth).status_code == 404
    repo = str(git_repo(files={"wsgi.py": "app = None\n"}))
    created = client.post("/api/submissions", json={"assignment": "tiny", "repository": repo}, headers=auth)
    assert created.status_code == 202
    sid = created.get_json()["id"]
    assert [s for s, _ in enqueued] == [sid]
    assert client.get(f"/api/submissions/{sid}", headers=auth).get_json()["progress"] == "queued"
    assert client.get(f"/api/submissions/{sid}/report", headers=auth).status_code == 404
    _finish(store, sid, web_settings.reports_dir)
    report = client.get(f"/api/submissions/{sid}/report", headers=auth).get_json()
    assert report["score"] == 5 and report["categories"][0]["tests"][0]["id"].endswith("secret_name")
    bad = client.post("/api/submissions", json={"assignment": "tiny", "repository": "ftp://x"}, headers=auth)
    assert bad.status_code == 400 and bad.is_json
