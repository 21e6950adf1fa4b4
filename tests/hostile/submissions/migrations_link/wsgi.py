"""HOSTILE: `migrations` (and `leak.txt`) are symbolic links to a host folder and file (made by the test).

A grader that followed them on the host would copy the host's files into the image; in the
container they must resolve inside the container only, where nothing is there.
"""

import os
import sys

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

for name in ("migrations", "leak.txt"):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    try:
        link = os.readlink(path)
    except OSError as exc:
        link = f"not a link ({exc})"
    try:
        if os.path.isdir(path):
            content = f"dir {sorted(os.listdir(path))}"
        else:
            with open(path, "rb") as handle:
                content = f"file {handle.read(200)!r}"
    except OSError as exc:
        content = f"unreadable: {type(exc).__name__}: {exc}"
    print(f"LINK {name} -> {link}: {content}", file=sys.stderr, flush=True)

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:////data/app.db")
db = SQLAlchemy(app)
Migrate(app, db)


@app.get("/login")
def login():
    return '<form method="post"><input name="username"><input name="password"></form>'
