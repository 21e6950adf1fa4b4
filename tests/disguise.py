"""A disguised copy of a solution, as a candidate hiding a copy would make it: the package and chosen names
renamed (in code, strings and templates alike), docstrings and comments gone, reformatted to two-space indents.

`RENAMES` is the thorough disguise the similarity unit tests measure (it breaks the app's JSON contract);
`BOOTABLE_RENAMES` renames only what the hidden suite never sees, so the copy still boots and is graded.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

RENAMES = {
    "notes_app": "jotter", "create_app": "build_application", "overrides": "settings_patch", "init_auth": "setup_login",
    "_load_user": "fetch_account", "_unauthorized": "deny", "authenticate": "verify_credentials",
    "start_session": "open_session", "user": "account", "username": "login_name", "password": "secret_word",
    "response": "resp", "target": "where", "note": "memo", "note_id": "memo_id", "notes": "memos", "data": "payload",
    "count_words": "word_total", "text": "content", "login_manager": "signin", "db": "database", "bp": "blueprint",
    "_own_note_or_404": "memo_of_caller", "InvalidInput": "BadPayload", "NoteNotFound": "MissingMemo",
    "_json_object": "read_json", "_string_field": "text_field", "_title": "clean_title", "_body": "clean_body",
    "list_notes": "all_memos", "create_note": "add_memo", "get_note": "read_memo", "update_note": "edit_memo",
    "delete_note": "drop_memo", "like_note": "upvote", "load_config": "read_settings", "_engine_options": "engine_kwargs",
    "csrf_token": "form_token", "csrf_ok": "token_valid", "api_error": "json_failure", "safe_next": "checked_next",
    "is_api_request": "wants_json", "value": "raw", "exc": "error", "app": "application", "query": "stmt",
    "User": "Member", "Note": "Entry",
}
_HIDDEN_FROM_THE_SUITE = (
    "notes_app", "create_app", "overrides", "init_auth", "_load_user", "_unauthorized", "authenticate",
    "start_session", "count_words", "login_manager", "_own_note_or_404", "InvalidInput", "NoteNotFound",
    "_json_object", "_string_field", "_title", "_body", "load_config", "_engine_options", "csrf_ok", "api_error",
    "safe_next", "is_api_request",
)
BOOTABLE_RENAMES = {name: RENAMES[name] for name in _HIDDEN_FROM_THE_SUITE}


def _renamed(text: str, renames: dict[str, str]) -> str:
    return re.sub(r"\b(" + "|".join(map(re.escape, renames)) + r")\b", lambda m: renames[m.group(1)], text)


def disguise_module(source: str, renames: dict[str, str]) -> str:
    """The module with docstrings and comments gone, reformatted, every chosen identifier renamed."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            setattr(node, "body", body[1:] or [ast.Pass()])  # noqa: B010  (any node with a body)
    code = _renamed(ast.unparse(tree), renames)
    lines = (re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), line) for line in code.splitlines())
    return "\n".join(line for line in lines if line.strip()) + "\n"


def disguised_copy(source: Path, dest: Path, renames: dict[str, str]) -> Path:
    """Every file of `source` copied to `dest`, paths and contents disguised; other files copied as they are."""
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        rel = Path(*(renames.get(part, part) for part in path.relative_to(source).parts))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            (dest / rel).write_text(disguise_module(path.read_text(), renames))
        elif path.suffix == ".html":
            (dest / rel).write_text(re.sub(r"\s+", " ", _renamed(path.read_text(), renames)))
        else:
            (dest / rel).write_bytes(path.read_bytes())
    return dest
