"""grader:weak-password-hash: fast hashes over passwords and passwords kept as given, and the sound forms that are fine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.assignments.check import make_solution
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.review import review_code
from tests.unit.review import found, review_files

RULE = "grader:weak-password-hash"
SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"

HEAD = """\
import hashlib
import hmac
from hashlib import sha256 as digest_of

import bcrypt
from argon2 import PasswordHasher
from flask import request
from werkzeug.security import check_password_hash, generate_password_hash
"""

MODEL = """\
from .extensions import db


class User(db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(32), unique=True)
    password = db.Column(db.String(128), nullable=False)
"""


def _lines(text: str, *needles: str) -> list[int]:
    """The 1-based line of each needle in `text`."""
    lines = text.splitlines()
    return [next(i for i, line in enumerate(lines, 1) if needle in line) for needle in needles]


def _function(body: str) -> str:
    return HEAD + "\n\ndef view(password, salt, token, email, user, f):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def _hashes(tmp_path: Path, body: str) -> tuple[list, str]:
    source = _function(body)
    return found(review_files(tmp_path, {"app/auth.py": source}), RULE), source


# --- fast hashes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "needle"), [
    ('return hashlib.sha256(password.encode("utf-8")).hexdigest()', "sha256"),
    ("return hashlib.md5((salt + password).encode()).hexdigest()", "md5"),
    ('return hashlib.new("sha1", password.encode()).hexdigest()', "new"),
    ("h = hashlib.sha512(salt)\nh.update(password.encode())\nreturn h.hexdigest()", "update"),
    ("return digest_of(f\"{salt}{password}\".encode()).hexdigest()", "digest_of"),
    ('return hashlib.blake2b(request.form["password"].encode()).hexdigest()', "blake2b"),
    ('return hashlib.sha3_256(request.json.get("new_pwd", "").encode()).hexdigest()', "sha3_256"),
    ("salted = salt + password\nraw = salted.encode()\nreturn hashlib.sha1(raw).hexdigest()", "sha1"),
    ("return hashlib.sha256(user.passphrase.encode()).hexdigest()", "sha256"),
])
def test_a_fast_hash_over_a_password_is_security(tmp_path: Path, body: str, needle: str) -> None:
    hits, source = _hashes(tmp_path, body)
    assert hits == [(RULE, "security", "app/auth.py", _lines(source, needle + "(")[0])]


def test_the_message_names_the_hash_and_the_fix(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app/auth.py": _function('return hashlib.new("md5", password.encode())')})
    message = next(f["message"] for f in answer["findings"] if f["rule"] == RULE)
    assert "hashlib.new('md5')" in message and "generate_password_hash" in message and "salted" in message


def test_ruffs_md5_rule_gives_way_on_a_password_line(tmp_path: Path) -> None:
    """ruff's S324 says MD5 is broken; ours says why it matters for a password, once, on that line."""
    source = _function("digest = hashlib.md5(password.encode()).hexdigest()\nreturn hashlib.md5(email.encode()).hexdigest()")
    answer = review_files(tmp_path, {"app/auth.py": source})
    password_line, email_line = _lines(source, "md5(password", "md5(email")
    assert found(answer, RULE) == [(RULE, "security", "app/auth.py", password_line)]
    assert [line for *_, line in found(answer, "ruff:S324")] == [email_line]


@pytest.mark.parametrize("body", [
    'return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)',
    "return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)",
    "return hashlib.sha256(token.encode()).hexdigest()",
    "return hashlib.md5(email.strip().lower().encode()).hexdigest()",
    "return hashlib.sha256(f.read()).hexdigest()",
    "return hashlib.sha256(user.reset_password_token.encode()).hexdigest()",
    "return hashlib.sha256(user.password_hash.encode()).hexdigest()",
    'return hashlib.sha256(f"{user.id}:{user.password_changed_at}".encode()).hexdigest()',
    "account = login(email, password)\nreturn hashlib.md5(account.email.encode()).hexdigest()",
    "h = hashlib.sha256()\nh.update(token.encode())\nreturn h.hexdigest()",
    "return generate_password_hash(password)",
    "return check_password_hash(user.password_hash, password)",
    "return bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "return PasswordHasher().hash(password)",
    "return hmac.compare_digest(user.password_hash, token)",
])
def test_slow_hashes_and_fast_hashes_of_other_things_are_no_finding(tmp_path: Path, body: str) -> None:
    assert _hashes(tmp_path, body)[0] == []


def test_tests_and_migrations_get_no_finding(tmp_path: Path) -> None:
    hashing = "import hashlib\n\n\ndef make(password):\n    return hashlib.sha256(password.encode()).hexdigest()\n"
    storing = MODEL + "\n\ndef make(password):\n    user = User()\n    user.password = password\n    return user\n"
    answer = review_files(tmp_path, {
        "tests/test_auth.py": hashing, "tests/conftest.py": storing,
        "migrations/versions/0001_users.py": hashing, "app/models.py": MODEL,
    })
    assert found(answer, RULE) == []


# --- passwords kept or compared as given ------------------------------------------------------------------


def test_a_model_that_keeps_the_password_itself_is_security(tmp_path: Path) -> None:
    """The plaintext-passwords flaw: a `password` column set as given and compared with `==`."""
    models = MODEL + (
        "\n    def set_password(self, password):\n        self.password = password\n\n"
        "    def check_password(self, password):\n        return self.password == password\n"
    )
    answer = review_files(tmp_path, {"app/models.py": models})
    stored, compared = _lines(models, "self.password = password", "self.password == password")
    assert found(answer, RULE) == [(RULE, "security", "app/models.py", stored), (RULE, "security", "app/models.py", compared)]
    messages = [f["message"] for f in answer["findings"] if f["rule"] == RULE]
    assert "stored as given" in messages[0] and "compared as plain text" in messages[1]
    assert all("the database then holds the passwords themselves" in m for m in messages)


VIEWS = """\
from flask import request

from .extensions import db
from .forms import LoginForm
from .models import User


def register():
    data = request.get_json()
    user = User(username=data["username"], password=data["password"])
    db.session.add(user)


def change_password(user):
    user.password = request.json.get("password", "").strip()


def reset(user, form):
    new_password = form.new_password.data
    user.password = new_password


def login(form):
    user = User.query.filter_by(username=form.username.data).first()
    if user is None or user.password != form.password.data:
        return None
    return user
"""


def test_views_that_keep_or_compare_the_password_are_security(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {"app/models.py": MODEL, "app/views.py": VIEWS})
    lines = _lines(VIEWS, "password=data", "user.password = request", "user.password = new_password", "user.password !=")
    assert found(answer, RULE) == [(RULE, "security", "app/views.py", line) for line in lines]


SOUND_MODEL = """\
from sqlalchemy.orm import validates
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    password_hash = db.Column(db.String(256))

    @property
    def password(self):
        raise AttributeError("password is not readable")

    @password.setter
    def password(self, password):
        self.password_hash = generate_password_hash(password)

    def verify_password(self, password):
        return check_password_hash(self.password_hash, password)


class Account(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    passwd = db.Column(db.String(256))

    @validates("passwd")
    def _hash(self, key, value):
        return generate_password_hash(value)


class Member(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    pwd = db.Column(db.String(256))

    def set_pwd(self, pwd):
        self.pwd = generate_password_hash(pwd)

    def check(self, pwd):
        return check_password_hash(self.pwd, pwd)
"""

SOUND_VIEWS = """\
import bcrypt
import hmac
from argon2 import PasswordHasher
from flask import request
from flask_login import current_user
from werkzeug.security import generate_password_hash

from .models import Account, Member, User

hasher = PasswordHasher()


def register(form):
    user = User(username=form.username.data, password=form.password.data)
    current_user.password = form.password.data
    account = Account(passwd=request.form["passwd"])
    account.passwd = request.form["passwd"]
    return user, account


def set_member(member, password):
    member.pwd = generate_password_hash(password)
    member.pwd = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    hashed = hasher.hash(password)
    member.pwd = hashed
    member.pwd = None
    return hmac.compare_digest(member.pwd, hashed) and member.pwd != hasher.hash(password)
"""

FORMS = """\
from flask_wtf import FlaskForm
from wtforms import PasswordField


class LoginForm(FlaskForm):
    password = PasswordField("Password")

    def fill(self, password):
        self.password = password


class MailSettings:
    def __init__(self, password):
        self.password = password

    def same(self, password):
        return self.password == password
"""


def test_hashed_passwords_property_setters_and_validators_are_no_finding(tmp_path: Path) -> None:
    """Flasky's `password` property hashes what views assign, @validates does too, and a hash kept in a column
    called `pwd` is a hash."""
    answer = review_files(tmp_path, {"app/models.py": SOUND_MODEL, "app/views.py": SOUND_VIEWS})
    assert found(answer, RULE) == []


def test_forms_settings_and_column_definitions_are_no_finding(tmp_path: Path) -> None:
    """Beside a model with a real `password` column: a form field or a mail setting called password is not a
    user's password kept in the database, and the column's definition stores nothing."""
    answer = review_files(tmp_path, {"app/models.py": MODEL, "app/forms.py": FORMS})
    assert found(answer, RULE) == []


def test_a_plain_user_class_that_keeps_the_password_is_security(tmp_path: Path) -> None:
    """No ORM: a User object kept in a dict or a file holds the password itself."""
    source = "class User:\n    def __init__(self, name, password):\n        self.name = name\n        self.password = password\n"
    answer = review_files(tmp_path, {"app/users.py": source})
    assert found(answer, RULE) == [(RULE, "security", "app/users.py", 4)]


# --- the flask-notes solutions ----------------------------------------------------------------------------


def _rule_sites(root: Path) -> list[tuple[str, int, str]]:
    review = review_code(root, Settings())
    assert review.error == ""
    return [(f.file, f.line, f.snippet) for f in review.findings if f.rule == RULE]


def test_the_unsalted_hash_solution_is_found_at_its_sha256(tmp_path: Path) -> None:
    root = make_solution(SOLUTIONS / "unsalted-hash", tmp_path / "unsalted")
    models = (root / "notes_app" / "models.py").read_text()
    (line,) = _lines(models, "hashlib.sha256(password")
    assert _rule_sites(root) == [("notes_app/models.py", line, 'return hashlib.sha256(password.encode("utf-8")).hexdigest()')]


def test_the_plaintext_solution_is_found_where_it_stores_and_compares(tmp_path: Path) -> None:
    root = make_solution(SOLUTIONS / "plaintext-passwords", tmp_path / "plaintext")
    models = (root / "notes_app" / "models.py").read_text()
    stored, compared = _lines(models, "self.password = password", "self.password == password")
    assert _rule_sites(root) == [
        ("notes_app/models.py", stored, "self.password = password"),
        ("notes_app/models.py", compared, "return self.password == password"),
    ]


@pytest.mark.parametrize("solution", ["reference", "single-module"])
def test_the_sound_solutions_get_none_of_it(solution: str) -> None:
    assert _rule_sites(SOLUTIONS / solution) == []
