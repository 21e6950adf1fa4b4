"""An assignment folder: `assignment.toml`, the brief, the hidden tests and the solutions."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.assignments.rubric import TestSpec, matches, spec_of
from grader.models import Severity


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Category(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Hidden tests live in tests/test_<id>.py.")
    title: str
    weight: float = Field(gt=0)
    serve: str | None = Field(
        None,
        description="Serve command for this category's phase, when it differs from run.serve; e.g. one worker "
        "for functional suites, so that a concurrency flaw costs points only in the concurrency category.",
    )
    lane: str = Field(
        "main", pattern=r"^[a-z][a-z0-9]{0,11}$",
        description="Categories of one lane run in order against one app; lanes run at the same time, each with "
        "its own app, database and socket (e.g. migrations, which drive only the Flask CLI, beside the HTTP suites).",
    )
    rubric: str = Field("", description="The line of the brief's rubric this category covers, quoted in the report.")
    severity: Severity = Field(
        Severity.correctness, description="The severity of a lost test of this category, unless `[[tests]]` says otherwise.",
    )
    idle_start: bool = Field(
        False,
        description="When this category begins a lane other than the first: the lane's app starts idle (no setup, "
        "no server), for tests that drive the Flask CLI and start the app themselves. Otherwise the lane's app is "
        "set up and serving before its tests start.",
    )

    @property
    def test_file(self) -> str:
        """Its hidden tests' file in the assignment's tests/ (category_of_file is the way back)."""
        return f"test_{self.id}.py"


class LayoutEntry(Strict):
    """A file or folder the brief requires, checked on the host before the build (grader/stages/preflight.py)."""

    path: str = Field(
        description="Relative to the repository root, `/` between parts; a folder ends with `/` (`migrations/`).",
    )
    brief: str = Field(min_length=1, description="The sentence of the brief that asks for it, quoted in the reasons.")
    missing: Literal["stop", "warn"] = Field(
        "stop", description="`stop`: the grading ends `rejected` before the build; `warn`: a warning, still graded.",
    )
    exposes: list[str] = Field(
        [], description="Module-level names a `.py` file must define or import (`app`); checked without importing it.",
    )
    look_for: list[str] = Field(
        [], description="When a `.py` file is missing: top-level modules and packages binding one of these names are "
        "listed as what was found instead (`app`, `create_app`).",
    )
    affects: list[str] = Field(
        [], description="Ids of the categories that cannot pass without it; a `warn` entry names them.",
    )

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    @property
    def name(self) -> str:
        """The path as the reasons print it: `wsgi.py`, `migrations/`."""
        return self.path

    @field_validator("path")
    @classmethod
    def _relative_inside(cls, path: str) -> str:
        parts = path.rstrip("/").split("/")
        if not path.strip("/") or path.startswith("/") or "\\" in path or any(ord(c) < 32 for c in path):
            raise ValueError(f"{path!r}: a path relative to the repository root, such as wsgi.py or migrations/")
        if any(part in ("..", ".", "") for part in parts):
            raise ValueError(f"{path!r}: no `.` or `..` parts and no empty ones; name the entry from the root")
        return path

    @field_validator("exposes", "look_for")
    @classmethod
    def _identifiers(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a Python name")
        return names

    @model_validator(mode="after")
    def _names_need_a_module(self) -> LayoutEntry:
        if (self.exposes or self.look_for) and not self.path.endswith(".py"):
            raise ValueError(f"{self.path}: exposes and look_for apply only to a .py file")
        if self.missing == "warn" and not self.affects:
            raise ValueError(f"{self.path}: a `warn` entry names the categories it affects (affects = [...])")
        return self


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class WorkerSpec(Strict):
    """A candidate process beside the server (a Celery worker): same image and environment, a container of its own."""

    command: str = Field(description="What the worker container runs; `{n}` is the count of starts, e.g. `-n w{n}@jobs`.")
    ready: str = Field(description="Run in the worker's container until it exits 0, e.g. `celery ... inspect ping -d w{n}@jobs`.")
    ready_timeout_s: float = Field(60, gt=0, description="A worker not ready by then fails the tests that need it.")
    preload: list[str] = Field([], description="Library modules the worker imports once before it forks (like run.preload).")


class RunSpec(Strict):
    """How the grader runs a submission."""

    setup: list[str] = Field(["flask --app wsgi db upgrade"], description="Run before serving, in order.")
    preload: list[str] = Field(
        [],
        description="Library modules the app container imports once, before it forks the setup, the serve command "
        "and each Flask CLI command (see grader/forkserver.py); never the candidate's own modules.",
    )
    serve: str = "gunicorn --workers 4 --bind 127.0.0.1:8000 wsgi:app"
    port: int = Field(8000, description="The port the relay forwards the hidden tests' HTTP to: the app's, or Nginx's.")
    services: list[Literal["postgresql", "redis", "nginx"]] = Field(
        [], description="Trusted services in the pod beside the app, one set per lane (grader/sandbox/services.py).",
    )
    app_port: int | None = Field(
        None, description="With nginx: the port the serve command binds, behind Nginx on `port`.",
    )
    ready_path: str = "/"
    database_path: str = "/data/app.db"
    env: dict[str, str] = Field({}, description="Extra environment; `{database_path}` is substituted.")
    parameters: dict[str, str] = Field(
        {}, description="Environment variables drawn at random for each app instance and handed to the hidden suite: "
        '"secret" (64 hex digits) or "int:LOW-HIGH", e.g. JWT_ACCESS_TOKEN_EXPIRES = "int:600-3600".',
    )
    worker: WorkerSpec | None = None
    lane_weight: int | None = Field(
        None, ge=1, description="Lane slots one lane takes (grader/stages/lanes.py), when measured CPU says better than "
        "counting containers: e.g. lanes that mostly wait on a broker's timers.",
    )


class Assignment(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    version: str
    brief: str = "brief.md"
    run: RunSpec = RunSpec()
    categories: list[Category] = Field(min_length=1)
    candidate_sees_tests: bool = Field(False, description="Whether candidates see hidden test names.")
    layout: list[LayoutEntry] = Field(
        [], description="Files and folders the brief requires, checked before the build (grader/stages/preflight.py).",
    )
    tests: list[TestSpec] = Field(
        [], description="What the assignment says of particular hidden tests: weights, severity, rubric, reproduction.",
    )
    questions: str = Field("questions.toml", description="The follow-up question bank (grader/assignments/questions.py).")
    starter: list[str] = Field(
        [], description="Files or folders of this assignment given to candidates: their code never counts as similar.",
    )
    folder: Path = Field(Path("."), exclude=True)

    @field_validator("categories")
    @classmethod
    def _unique_ids(cls, categories: list[Category]) -> list[Category]:
        ids = [c.id for c in categories]
        if len(ids) != len(set(ids)):
            raise ValueError(f"category ids must be unique, got {ids}")
        return categories

    @model_validator(mode="after")
    def _starter_is_ours(self) -> Assignment:
        root = self.folder.resolve()
        for entry in self.starter:
            path = (self.folder / entry).resolve()
            if not path.is_relative_to(root) or not path.exists():
                raise ValueError(f"starter {entry!r}: not a file or folder inside the assignment's folder")
        return self

    @property
    def starter_paths(self) -> list[Path]:
        return [self.folder / entry for entry in self.starter]

    @model_validator(mode="after")
    def _parameters_are_drawable(self) -> Assignment:
        for name, kind in self.run.parameters.items():
            if kind != "secret" and not re.fullmatch(r"int:\d+-\d+", kind):
                raise ValueError(f'run.parameters.{name}: "secret" or "int:LOW-HIGH", got {kind!r}')
        return self

    @model_validator(mode="after")
    def _port_in_serve(self) -> Assignment:
        run = self.run
        if "nginx" in run.services:
            if run.app_port is None or run.app_port == run.port:
                raise ValueError("run.app_port: with nginx, the app binds its own port, other than run.port (Nginx's)")
            if str(run.app_port) not in run.serve:
                raise ValueError(f"run.serve must bind run.app_port {run.app_port}")
        elif str(run.port) not in run.serve:
            raise ValueError(f"run.serve must bind run.port {run.port}")
        return self

    @model_validator(mode="after")
    def _idle_start_begins_a_later_lane(self) -> Assignment:
        lanes = self.lanes()
        starts = {lane[0].id for lane in lanes[1:]}
        for category in self.categories:
            if category.idle_start and category.id not in starts:
                raise ValueError(
                    f"category {category.id!r}: idle_start applies only to the first category of a lane other than "
                    f"the first ({lanes[0][0].lane!r} boots its app as the grade's boot stage)"
                )
        return self

    @model_validator(mode="after")
    def _layout_is_consistent(self) -> Assignment:
        paths = [entry.path.rstrip("/") for entry in self.layout]
        if len(paths) != len(set(paths)):
            raise ValueError(f"layout: each path once, got {[entry.path for entry in self.layout]}")
        known = {c.id for c in self.categories}
        for entry in self.layout:
            if unknown := sorted(set(entry.affects) - known):
                raise ValueError(f"layout {entry.path}: affects {unknown}, not categories of the assignment")
        text = self._brief_words() if self.layout else ""
        for entry in self.layout if text else []:
            if _words(entry.brief) not in text:
                raise ValueError(f"layout {entry.path}: brief: the sentence is not in {self.brief}; quote it exactly")
        return self

    @model_validator(mode="after")
    def _tests_are_consistent(self) -> Assignment:
        by_file = {c.test_file: c for c in self.categories}
        quoted = [(f"category {c.id}", c.rubric) for c in self.categories if c.rubric]
        for spec in self.tests:
            category = by_file.get(spec.file)
            if category is None:
                raise ValueError(f"tests {spec.name!r}: {spec.file} is not the hidden test file of a category")
            if other := [p for p in spec.match if p.split("::", 1)[0] != spec.file]:
                raise ValueError(f"tests {spec.name!r}: {other} are not in {spec.file}; one entry, one file")
            path = self.tests_dir / spec.file
            names = test_functions(path) if path.is_file() else None
            for pattern in spec.match if names is not None else []:
                function = pattern.split("::", 1)[1].split("[", 1)[0]
                if not any(matches(f"{spec.file}::{function}", f"{spec.file}::{name}") for name in names or ()):
                    raise ValueError(f"tests {spec.name!r}: {pattern!r} matches no test function of {spec.file}")
            if spec.rubric:
                quoted.append((f"tests {spec.name!r}", spec.rubric))
        for category in self.categories:
            declared = sum(s.points or 0 for s in self.tests if s.file == category.test_file)
            if declared >= category.weight:
                raise ValueError(
                    f"category {category.id}: its weighted tests carry {declared:g} of its {category.weight:g} points; "
                    "leave a share for its other tests"
                )
        text = self._brief_words() if quoted else ""
        for where, sentence in quoted if text else []:
            if _words(sentence) not in text:
                raise ValueError(f"{where}: rubric: the sentence is not in {self.brief}; quote it exactly")
        return self

    def _brief_words(self) -> str:
        """The brief's text, whitespace folded, for the sentences assignment.toml quotes; "" without a brief."""
        brief = self.folder / self.brief
        return _words(brief.read_text(errors="replace")) if brief.is_file() else ""

    def spec_of(self, test_id: str) -> TestSpec | None:
        """What `[[tests]]` says of this hidden test, if anything."""
        return spec_of(self.tests, test_id)

    def specs_of(self, category: Category) -> list[TestSpec]:
        return [spec for spec in self.tests if spec.file == category.test_file]

    @property
    def tests_dir(self) -> Path:
        return self.folder / "tests"

    def serve_of(self, category: Category) -> str:
        """The command that serves the app for this category's tests."""
        return category.serve or self.run.serve

    def lane_weight(self) -> int:
        """How many lane slots one lane of this assignment takes: its app, plus its services and its worker,
        each about as heavy as the app (PostgreSQL and a prefork Celery each hold a few processes), unless
        `run.lane_weight` says what the assignment's lanes were measured to need."""
        return self.run.lane_weight or 1 + bool(self.run.services) + (self.run.worker is not None)

    def lanes(self) -> list[list[Category]]:
        """Categories grouped by lane, in the order each lane first appears; the first lane is the one booted first."""
        lanes: dict[str, list[Category]] = {}
        for category in self.categories:
            lanes.setdefault(category.lane, []).append(category)
        return list(lanes.values())

    @property
    def max_score(self) -> float:
        return sum(c.weight for c in self.categories)


def category_of_file(path: Path) -> str:
    """The category a hidden test file scores for: tests/test_auth.py -> `auth`."""
    return path.stem.removeprefix("test_")


def test_functions(path: Path) -> set[str]:
    """Names of the module-level test functions of a hidden test file, read without importing it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.name for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


class AssignmentError(Exception):
    """An assignment folder is missing or invalid; the message names the file and the field."""


def load_assignment(assignments_dir: Path, assignment_id: str) -> Assignment:
    folder = assignments_dir / assignment_id
    if not (folder / "assignment.toml").is_file():
        known = sorted(p.name for p in assignments_dir.glob("*/assignment.toml") for p in [p.parent])
        raise AssignmentError(f"no assignment {assignment_id!r} in {assignments_dir}; known: {', '.join(known)}")
    return load_assignment_folder(folder)


def assignment_or_none(assignments_dir: Path, assignment_id: str) -> Assignment | None:
    """The assignment, or None when it is gone or broken: for a report or page that must be made anyway."""
    try:
        return load_assignment(assignments_dir, assignment_id)
    except AssignmentError:
        return None


def load_assignment_folder(folder: Path) -> Assignment:
    path = folder / "assignment.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AssignmentError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Assignment.model_validate({**data, "folder": folder.resolve()})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise AssignmentError(f"{path}: {problems}") from None
