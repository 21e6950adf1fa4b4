"""The JSON API with a Bearer token: create an invitation, submit, read the status and the report."""

from __future__ import annotations

import re

from grader.web.users import Role
from tests.web.conftest import csrf_of
from tests.web.test_candidate import _finish


def test_api_invitation_submit_status_report(client, users, tokens, git_repo, store, enqueued, web_settings):
    """A token of a reviewer creates an invitation, submits, reads the status and, once graded, the report."""
    user = users.create_user("bot@example.com", "password123", Role.reviewer)
    auth = {"Authorization": f"Bearer {tokens.create_token(user.id, 'ci')}"}
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
    _finish(store, sid, web_settings.paths.reports_dir)
    report = client.get(f"/api/submissions/{sid}/report", headers=auth).get_json()
    assert report["score"] == 5 and report["categories"][0]["tests"][0]["id"].endswith("secret_name")
    bad = client.post("/api/submissions", json={"assignment": "tiny", "repository": "ftp://x"}, headers=auth)
    assert bad.status_code == 400 and bad.is_json
    again = client.post(f"/api/submissions/{sid}/regrade", headers=auth)
    assert again.status_code == 202 and again.get_json()["status"] == "queued"
    assert [s for s, _ in enqueued] == [sid, sid] and enqueued[1][1] != enqueued[0][1], "a new job for the regrade"
    busy = client.post(f"/api/submissions/{sid}/regrade", headers=auth)
    assert busy.status_code == 409 and "queued" in busy.get_json()["error"]
    assert client.post("/api/submissions/s-nope/regrade", headers=auth).status_code == 404
    assert client.post(f"/api/submissions/{sid}/regrade").status_code == 401


def _new_token_on_the_page(client, name: str) -> str:
    token = csrf_of(client.get("/tokens").get_data(as_text=True))
    page = client.post("/tokens", data={"name": name, "csrf_token": token}).get_data(as_text=True)
    match = re.search(r'<code id="api-token">([^<]+)</code>', page)
    assert match, "the new token is not shown"
    return match.group(1)


def _revoke(client, token_id: int):
    token = csrf_of(client.get("/tokens").get_data(as_text=True))
    return client.post(f"/tokens/{token_id}/revoke", data={"csrf_token": token})


def test_a_revoked_token_answers_401_and_only_its_owner_or_an_admin_may_revoke_it(app, tokens, signed_in):
    """Tokens are listed (never shown again) with Revoke; after revoking, the API refuses the token; another
    reviewer cannot revoke it (404, as for no token), an administrator can."""
    ann, bob, admin = signed_in("ann@example.com"), signed_in("bob@example.com"), signed_in("root@example.com", Role.admin)
    first, second = _new_token_on_the_page(ann, "ats"), _new_token_on_the_page(ann, "script")
    probe = app.test_client()
    assert probe.get("/api/submissions/s-none", headers={"Authorization": f"Bearer {first}"}).status_code == 404

    listed = tokens.list_tokens(None)
    assert [t.name for t in listed] == ["script", "ats"] and listed[1].last_used_at is not None
    page = ann.get("/tokens").get_data(as_text=True)
    assert "ats" in page and "script" in page and first not in page and second not in page
    assert "ats" not in bob.get("/tokens").get_data(as_text=True), "a reviewer sees only their own tokens"
    assert "ann@example.com" in admin.get("/tokens").get_data(as_text=True)

    ats, script = listed[1].id, listed[0].id
    assert _revoke(bob, ats).status_code == 404
    assert ann.post(f"/tokens/{ats}/revoke").status_code == 400, "revoking needs the CSRF token"
    assert _revoke(ann, ats).status_code == 302
    refused = probe.get("/api/submissions/s-none", headers={"Authorization": f"Bearer {first}"})
    assert refused.status_code == 401 and refused.is_json
    assert probe.get("/api/submissions/s-none", headers={"Authorization": f"Bearer {second}"}).status_code == 404
    assert _revoke(admin, script).status_code == 302
    assert probe.get("/api/submissions/s-none", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert tokens.list_tokens(None) == []
