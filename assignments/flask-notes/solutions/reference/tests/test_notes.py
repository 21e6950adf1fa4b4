"""The notes API: create, read, update, like and delete, each user seeing only their own notes."""

from __future__ import annotations


def test_notes_crud(alice):
    created = alice.post("/api/notes", json={"title": "Groceries", "body": "milk eggs"})
    assert created.status_code == 201
    note = created.get_json()
    assert (note["title"], note["word_count"], note["likes"]) == ("Groceries", 2, 0)
    url = f"/api/notes/{note['id']}"

    assert [n["id"] for n in alice.get("/api/notes").get_json()] == [note["id"]]
    assert alice.patch(url, json={"body": "milk eggs bread"}).get_json()["word_count"] == 3
    assert alice.post(f"{url}/like").get_json() == {"likes": 1}
    assert alice.get(url).get_json()["likes"] == 1

    assert alice.delete(url).status_code == 204
    assert alice.get(url).status_code == 404


def test_notes_are_checked_before_they_are_saved(alice):
    assert alice.post("/api/notes", json={"title": "  "}).status_code == 400
    assert alice.post("/api/notes", json={"title": "x" * 201}).status_code == 400
    assert alice.post("/api/notes", json={"title": "ok", "body": 3}).status_code == 400
    assert alice.get("/api/notes").get_json() == []


def test_someone_elses_note_is_not_found(alice, accounts):
    note_id = alice.post("/api/notes", json={"title": "Private"}).get_json()["id"]
    alice.post("/api/logout")
    accounts.register("bob")
    accounts.log_in("bob")
    answers = [alice.get(f"/api/notes/{note_id}"), alice.delete(f"/api/notes/{note_id}"), alice.post(f"/api/notes/{note_id}/like")]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert alice.get("/api/notes").get_json() == []
