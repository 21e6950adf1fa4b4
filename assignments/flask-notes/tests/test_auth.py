"""Authentication and the notes API of a logged-in user: accounts, sessions, password storage, CRUD.

PYTEST_DONT_REWRITE (see conftest.py). Whether a client is logged in is judged by GET /api/me
answering 200 with the user; the exact answer without a session (401 JSON) is the access_split
category's business, so a flaw there costs no points here.

Tests that only need a logged-in user share users with other tests (see conftest.py): they judge
only the notes they create themselves. Registration, password storage and logging in use accounts
of their own, or a login session of their own of a shared account, where the behaviour needs it.
"""

from __future__ import annotations

import re
import uuid

from conftest import (
    PASSWORD,
    answer,
    authenticated_as,
    create_note,
    describe,
    expect_status,
    json_of,
    login,
    readable,
    register,
    table_columns,
    tamper_session,
    unique_name,
)

MISSING_NOTE_ID = 987654321


def _suffix(length: int) -> str:
    return uuid.uuid4().hex[:length]


def _check_user_body(body, username: str, what: str) -> None:
    assert isinstance(body, dict), f"{what}: expected a JSON object {{id, username}}, got {body!r}"
    assert body.get("username") == username, f"{what}: expected username {username!r}, got body {body!r}"
    assert isinstance(body.get("id"), (int, str)) and body.get("id") not in ("", None), f"{what}: expected an id, got body {body!r}"


def _check_note(note, title: str, body: str, what: str) -> None:
    assert isinstance(note, dict), f"{what}: expected a note object, got {note!r}"
    missing = [key for key in ("id", "title", "body", "word_count", "likes") if key not in note]
    assert not missing, f"{what}: the note lacks {missing}; got {note!r}"
    assert note["title"] == title and note["body"] == body, f"{what}: expected title {title!r} and body {body!r}, got {note!r}"
    words = len(body.split())
    assert note["word_count"] == words, (
        f"{what}: expected word_count {words} (whitespace-separated words of {body!r}), got {note['word_count']!r}"
    )


# --- registration -------------------------------------------------------------------------------


def test_register_returns_201_with_id_and_username(client):
    """Registering a new user answers 201 with the user's id and username, and no password."""
    username = unique_name()
    secret = f"pw-{_suffix(12)}"
    response = client.post("/api/register", json={"username": username, "password": secret})
    expect_status(response, 201, "POST /api/register with a valid new username and password")
    _check_user_body(json_of(response, "POST /api/register"), username, "POST /api/register")
    assert secret not in response.text, f"POST /api/register echoed the password back; {describe(response)}"


def _register_cases(client, cases: list[tuple[str, dict]], expected: int) -> list[str]:
    """POST /api/register for each (label, request kwargs); the labels of answers other than `expected`."""
    wrong = []
    for label, kwargs in cases:
        response = client.post("/api/register", **kwargs)
        if response.status_code != expected:
            wrong.append(f"{label} {answer(response)}")
    return wrong


def test_register_accepts_values_at_the_bounds(client):
    """Usernames of 3 and 32 characters of [A-Za-z0-9_] and an 8-character password are accepted (201)."""
    cases = [
        ("a 3-character username", "a" + _suffix(2), PASSWORD),
        ("a 32-character username", ("Z9_" + _suffix(32))[:32], PASSWORD),
        ("letters, digits and underscore", f"Mixed_Case_09_{_suffix(6)}", PASSWORD),
        ("an 8-character password", unique_name(), "8chars!!"),
    ]
    wrong = _register_cases(
        client,
        [(f"{label} ({name!r})", {"json": {"username": name, "password": pw}}) for label, name, pw in cases],
        201,
    )
    assert not wrong, "POST /api/register should accept valid input with 201, but refused " + "; ".join(wrong)


def test_register_rejects_invalid_usernames(client):
    """Usernames shorter than 3, longer than 32, or with characters outside [A-Za-z0-9_] are refused with 400."""
    names = {
        "2 characters": "ab",
        "33 characters": "x" * 33,
        "empty": "",
        "a dash": "has-dash",
        "a space": "has space",
        "a non-ASCII letter": "caf\u00e9_user",
        "a trailing newline": "newline_end\n",
    }
    wrong = _register_cases(
        client,
        [
            (f"a username with {label} ({name!r})", {"json": {"username": name, "password": PASSWORD}})
            for label, name in names.items()
        ],
        400,
    )
    assert not wrong, "POST /api/register should refuse invalid usernames with 400; " + "; ".join(wrong)


def test_register_rejects_short_password(client):
    """A password shorter than 8 characters is refused with 400."""
    response = client.post("/api/register", json={"username": unique_name(), "password": "7chars!"})
    expect_status(response, 400, "POST /api/register with a 7-character password")


def test_register_rejects_missing_fields(client):
    """A registration without username, without password, or with an empty object is refused with 400."""
    cases = [
        ("no username", {"password": PASSWORD}),
        ("no password", {"username": unique_name()}),
        ("an empty object", {}),
    ]
    wrong = _register_cases(client, [(f"a body with {label}", {"json": body}) for label, body in cases], 400)
    assert not wrong, "POST /api/register should refuse missing fields with 400; " + "; ".join(wrong)


def test_register_rejects_non_json_body(client):
    """A registration whose body is not JSON (form-encoded, malformed, plain text) is refused with 400."""
    cases = [
        ("application/x-www-form-urlencoded", f"username={unique_name()}&password={PASSWORD}"),
        ("application/json", '{"username": "broken_json", "password": '),
        ("text/plain", f"{unique_name()} {PASSWORD}"),
    ]
    wrong = _register_cases(
        client,
        [(f"a {ctype} body {raw!r}", {"data": raw, "headers": {"Content-Type": ctype}}) for ctype, raw in cases],
        400,
    )
    assert not wrong, "POST /api/register should refuse a non-JSON body with 400; " + "; ".join(wrong)


def test_register_taken_username_is_409(client, shared_users):
    """Registering a username that is already taken answers 409, not 500."""
    username = shared_users.take()[1].username
    response = client.post("/api/register", json={"username": username, "password": "another-pass-99"})
    expect_status(response, 409, f"POST /api/register with the taken username {username!r}")


# --- login, me, logout --------------------------------------------------------------------------


def test_login_returns_user_and_a_working_session_cookie(client, shared_users):
    """Logging in answers 200 with {id, username} and sets a cookie that authenticates later requests."""
    account = shared_users.take()[1]
    username, browser = account.username, client
    response = browser.post("/api/login", json={"username": username, "password": PASSWORD})
    expect_status(response, 200, "POST /api/login with the right password")
    body = json_of(response, "POST /api/login")
    _check_user_body(body, username, "POST /api/login")
    assert body.get("id") == account.id, f"POST /api/login: expected the id given at registration {account.id!r}, got {body!r}"
    assert response.headers.get("Set-Cookie"), f"POST /api/login set no cookie; {describe(response)}"
    me = browser.clone().get("/api/me")
    expect_status(me, 200, "GET /api/me with the cookies set by POST /api/login, on a new connection")
    _check_user_body(json_of(me, "GET /api/me"), username, "GET /api/me after login")


def test_login_wrong_password_is_401(client, shared_users):
    """Logging in with a wrong password answers 401 and gives no session."""
    username = shared_users.take()[1].username
    response = client.post("/api/login", json={"username": username, "password": "not-the-password"})
    expect_status(response, 401, "POST /api/login with a wrong password")
    assert authenticated_as(client) is None, "after a refused login, GET /api/me still answered 200 with a user"


def test_login_unknown_user_is_401(client):
    """Logging in as a user who does not exist answers 401."""
    response = client.post("/api/login", json={"username": unique_name("ghost"), "password": PASSWORD})
    expect_status(response, 401, "POST /api/login with a username nobody registered")


def test_me_returns_the_logged_in_user(client, shared_users):
    """GET /api/me answers 200 with the id and username of the session's user."""
    _, account = shared_users.take(client)
    username = account.username
    response = client.get("/api/me")
    expect_status(response, 200, "GET /api/me with a session")
    body = json_of(response, "GET /api/me")
    _check_user_body(body, username, "GET /api/me")
    assert body.get("id") == account.id, f"GET /api/me: expected id {account.id!r} (from registration), got {body!r}"


def test_logout_ends_the_session(client, shared_users):
    """After POST /api/logout (204 or 200) the client's updated cookies no longer authenticate."""
    username = shared_users.take()[1].username
    login(client, username)  # a session of this test's own, of a shared account
    assert authenticated_as(client) == username, "GET /api/me did not show the user right after login"
    response = client.post("/api/logout")
    expect_status(response, (204, 200), "POST /api/logout with a session")
    me = client.get("/api/me")
    assert me.status_code != 200, f"after logout, GET /api/me should no longer succeed; {describe(me)}"
    notes = client.get("/api/notes")
    assert notes.status_code != 200, f"after logout, GET /api/notes should no longer succeed; {describe(notes)}"


def test_forged_session_cookie_is_refused(client, shared_users):
    """A forged (tampered) session cookie never authenticates: no 2xx from /api/me or /api/notes with it.

    Which refusal (401 JSON, 403, a redirect) is the access_split category's business; here only whether it
    is accepted counts."""
    tamper_session(client, shared_users.take()[0])
    for path in ("/api/me", "/api/notes"):
        response = client.get(path)
        assert not 200 <= response.status_code < 300, f"GET {path} with a forged session cookie was accepted; {describe(response)}"


# --- the session cookie and stored passwords ----------------------------------------------------


def _set_cookie_lines(response) -> list[str]:
    raw = getattr(response.raw, "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        return list(raw.getlist("Set-Cookie"))
    header = response.headers.get("Set-Cookie")
    return [header] if header else []


def _cookie_name(line: str) -> str:
    return line.split("=", 1)[0].strip()


def test_session_cookie_is_httponly_and_samesite(client, make_client, shared_users):
    """The session cookie set at login has the HttpOnly flag and a SameSite attribute."""
    username = shared_users.take()[1].username
    response = login(client, username)
    lines = [line for line in _set_cookie_lines(response) if line.split(";")[0].split("=", 1)[-1].strip()]
    assert lines, f"POST /api/login set no (non-empty) cookie; {describe(response)}"
    # The session cookie is the one that authenticates on its own; names are the candidate's choice.
    session_lines = []
    for line in lines:
        alone = make_client()
        cookie = client.cookies.get(_cookie_name(line))
        if cookie is None:
            continue
        alone.cookies.set(_cookie_name(line), cookie)
        if authenticated_as(alone) == username:
            session_lines.append(line)
    checked = session_lines or lines
    for line in checked:
        attributes = [part.strip().lower() for part in line.split(";")[1:]]
        assert "httponly" in attributes, f"the session cookie lacks HttpOnly; Set-Cookie was {line!r}"
        samesite = [a for a in attributes if re.fullmatch(r"samesite\s*=\s*(lax|strict|none)", a)]
        assert samesite, f"the session cookie lacks a SameSite attribute; Set-Cookie was {line!r}"


def test_password_not_stored_in_plaintext(client, app_control):
    """The database file (and its journal) does not contain a user's plaintext password."""
    secret = f"plain-{uuid.uuid4().hex}"
    username, _ = register(client, password=secret)
    login(client, username, password=secret)
    data = app_control.database_bytes()
    assert secret.encode() not in data, "the plaintext password was found in the database file"
    assert secret.encode("utf-16-le") not in data, "the plaintext password was found (UTF-16) in the database file"


_PASSWORDISH = re.compile(r"pass|pwd|hash|digest|secret|salt", re.IGNORECASE)
_TIMESTAMPISH = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


def test_same_password_gives_different_stored_hashes(app_control, shared_users):
    """Two users with the same password have different stored password hashes (salted hashing)."""
    # Shared users are all registered with the same password, PASSWORD.
    first, second = (shared_users.take()[1].username for _ in range(2))
    columns = table_columns(app_control, "users")
    assert columns, "the database has no `users` table to read the stored passwords from"
    names = [c["name"] for c in columns]
    if "username" in names:
        where, params = '"username" IN (?, ?)', [first, second]
    else:
        where = " OR ".join(f'"{n}" IN (?, ?)' for n in names)
        params = [first, second] * len(names)
    select = ", ".join(readable(n) for n in names)
    rows = app_control.sql((f"SELECT {select} FROM users WHERE {where}", params))
    by_user = {}
    for row in rows:
        for value in row:
            if value in (first, second):
                by_user[value] = dict(zip(names, row, strict=True))
    assert set(by_user) == {first, second}, f"could not find both users {first!r} and {second!r} in `users`"
    a, b = by_user[first], by_user[second]
    pk = {c["name"] for c in columns if c["pk"]}
    candidates = [
        n
        for n in names
        if n not in pk
        and isinstance(a[n], str)
        and isinstance(b[n], str)
        and a[n] not in (first, second)
        and b[n] not in (first, second)
    ]
    named = [n for n in candidates if _PASSWORDISH.search(n)]
    if named:
        same = [n for n in named if a[n] == b[n]]
        assert not same, (
            f"users {first!r} and {second!r} share a password and have the same stored {same} "
            f"(value {a[same[0]][:60]!r}): the hash is not salted"
        )
        return
    others = [n for n in candidates if not (_TIMESTAMPISH.match(a[n]) and _TIMESTAMPISH.match(b[n]))]
    assert others, f"found no stored password column in `users` (columns {names})"
    assert any(a[n] != b[n] for n in others), (
        f"users {first!r} and {second!r} share a password and every stored text column {others} is equal: the hash is not salted"
    )


# --- notes of a logged-in user ------------------------------------------------------------------


def test_create_note_returns_201_with_the_note(user):
    """POST /api/notes answers 201 with {id, title, body, word_count, likes}, word_count counting the body."""
    client, _ = user
    title, body = "Shopping list", "  eggs milk\tbread\n  butter and  jam "
    response = client.post("/api/notes", json={"title": title, "body": body})
    expect_status(response, 201, "POST /api/notes with a title and a body")
    note = json_of(response, "POST /api/notes")
    _check_note(note, title, body, "POST /api/notes")
    assert note["likes"] == 0, f"POST /api/notes: a new note should have 0 likes, got {note!r}"


def test_create_note_without_title_is_400(user):
    """POST /api/notes without a title is refused with 400."""
    client, _ = user
    response = client.post("/api/notes", json={"body": "a body but no title"})
    expect_status(response, 400, "POST /api/notes without a title")


def test_list_notes_shows_only_own_notes(client, shared_users):
    """GET /api/notes is a JSON list of the caller's notes, and never another user's."""
    # The caller is a new user of this test's own, so its exact list is known; the other user is shared.
    username, _ = register(client)
    login(client, username)
    other, _ = shared_users.take()
    theirs = create_note(other, "not yours", "secret stuff")["id"]
    empty = client.get("/api/notes")
    expect_status(empty, 200, "GET /api/notes for a user without notes")
    assert json_of(empty, "GET /api/notes") == [], f"a new user should have no notes; {describe(empty)}"
    mine = {create_note(client, f"mine {i}", "one two")["id"] for i in range(2)}
    response = client.get("/api/notes")
    expect_status(response, 200, "GET /api/notes")
    listed = json_of(response, "GET /api/notes")
    assert isinstance(listed, list), f"GET /api/notes: expected a JSON list, got {listed!r}"
    ids = {note.get("id") for note in listed if isinstance(note, dict)}
    assert theirs not in ids, f"GET /api/notes listed another user's note (id {theirs}); {describe(response)}"
    assert ids == mine, f"GET /api/notes: expected exactly the caller's notes {sorted(mine)}, got ids {sorted(ids, key=str)}"


def test_get_own_note(user):
    """GET /api/notes/<id> answers 200 with the caller's note."""
    client, _ = user
    note = create_note(client, "read me", "three little words")
    response = client.get(f"/api/notes/{note['id']}")
    expect_status(response, 200, "GET /api/notes/<id> of an own note")
    _check_note(json_of(response, "GET /api/notes/<id>"), "read me", "three little words", "GET /api/notes/<id>")


def test_get_missing_or_foreign_note_is_404(user, shared_users):
    """GET /api/notes/<id> of another user's note, or of a note that does not exist, answers 404."""
    client, _ = user
    other, _ = shared_users.take()
    foreign = create_note(other, "private", "not for you")
    response = client.get(f"/api/notes/{foreign['id']}")
    expect_status(response, 404, "GET /api/notes/<id> of another user's note")
    missing = client.get(f"/api/notes/{MISSING_NOTE_ID}")
    expect_status(missing, 404, "GET /api/notes/<id> of a note that does not exist")


def test_patch_updates_note_and_recomputes_word_count(user):
    """PATCH /api/notes/<id> updates title and body, answers the updated note and recomputes word_count."""
    client, _ = user
    note = create_note(client, "draft", "one two")
    path = f"/api/notes/{note['id']}"
    retitled = client.patch(path, json={"title": "final"})
    expect_status(retitled, 200, "PATCH /api/notes/<id> with a new title only")
    _check_note(json_of(retitled, "PATCH (title)"), "final", "one two", "PATCH /api/notes/<id> with only a title")
    new_body = "now there are\tfive\nwords "
    rebodied = client.patch(path, json={"body": new_body})
    expect_status(rebodied, 200, "PATCH /api/notes/<id> with a new body only")
    _check_note(json_of(rebodied, "PATCH (body)"), "final", new_body, "PATCH /api/notes/<id> with only a body")
    both = client.patch(path, json={"title": "both", "body": "x"})
    expect_status(both, 200, "PATCH /api/notes/<id> with a title and a body")
    _check_note(json_of(both, "PATCH (both)"), "both", "x", "PATCH /api/notes/<id> with title and body")
    again = client.get(path)
    expect_status(again, 200, "GET /api/notes/<id> after PATCH")
    _check_note(json_of(again, "GET after PATCH"), "both", "x", "GET /api/notes/<id> after PATCH (stored)")


def test_patch_foreign_or_missing_note_is_404(user, shared_users):
    """PATCH /api/notes/<id> of another user's note (or a missing one) answers 404 and changes nothing."""
    client, _ = user
    owner, _ = shared_users.take()
    foreign = create_note(owner, "owner's title", "owner's body")
    response = client.patch(f"/api/notes/{foreign['id']}", json={"title": "hijacked", "body": "x y z"})
    expect_status(response, 404, "PATCH /api/notes/<id> of another user's note")
    kept = owner.get(f"/api/notes/{foreign['id']}")
    expect_status(kept, 200, "the owner's GET /api/notes/<id> after someone else's PATCH")
    _check_note(json_of(kept, "owner's GET"), "owner's title", "owner's body", "the note after a refused PATCH")
    missing = client.patch(f"/api/notes/{MISSING_NOTE_ID}", json={"title": "nothing"})
    expect_status(missing, 404, "PATCH /api/notes/<id> of a note that does not exist")


def test_delete_own_note(user):
    """DELETE /api/notes/<id> answers 204, after which the note is gone."""
    client, _ = user
    note = create_note(client, "delete me", "bye")
    keep = create_note(client, "keep me", "stay")
    response = client.delete(f"/api/notes/{note['id']}")
    expect_status(response, 204, "DELETE /api/notes/<id> of an own note")
    gone = client.get(f"/api/notes/{note['id']}")
    expect_status(gone, 404, "GET /api/notes/<id> of a deleted note")
    listing = client.get("/api/notes")
    expect_status(listing, 200, "GET /api/notes after DELETE")
    listed = json_of(listing, "GET /api/notes")
    ids = [n.get("id") for n in listed if isinstance(n, dict)] if isinstance(listed, list) else []
    wrong = [f"it still lists the deleted note {note['id']}"] if note["id"] in ids else []
    wrong += [] if keep["id"] in ids else [f"it does not list note {keep['id']}, which was not deleted"]
    assert not wrong, f"after DELETE of note {note['id']}, GET /api/notes is wrong: " + "; ".join(wrong)


def test_delete_foreign_or_missing_note_is_404(user, shared_users):
    """DELETE /api/notes/<id> of another user's note (or a missing one) answers 404 and keeps the note."""
    client, _ = user
    owner, _ = shared_users.take()
    foreign = create_note(owner, "survivor", "still here")
    response = client.delete(f"/api/notes/{foreign['id']}")
    expect_status(response, 404, "DELETE /api/notes/<id> of another user's note")
    kept = owner.get(f"/api/notes/{foreign['id']}")
    expect_status(kept, 200, "the owner's GET /api/notes/<id> after someone else's DELETE")
    missing = client.delete(f"/api/notes/{MISSING_NOTE_ID}")
    expect_status(missing, 404, "DELETE /api/notes/<id> of a note that does not exist")


def test_like_returns_the_new_count(user):
    """POST /api/notes/<id>/like answers 200 {likes} and adds exactly one like per call."""
    client, _ = user
    note = create_note(client, "likeable", "good note")
    for expected in (1, 2, 3):
        response = client.post(f"/api/notes/{note['id']}/like")
        expect_status(response, 200, f"POST /api/notes/<id>/like (call {expected})")
        body = json_of(response, "POST /api/notes/<id>/like")
        assert isinstance(body, dict) and body.get("likes") == expected, (
            f"POST /api/notes/<id>/like call {expected}: expected {{'likes': {expected}}}; {describe(response)}"
        )
    stored = json_of(client.get(f"/api/notes/{note['id']}"), "GET /api/notes/<id>")
    assert stored.get("likes") == 3, f"after 3 likes, GET /api/notes/<id> should show likes 3, got {stored!r}"
