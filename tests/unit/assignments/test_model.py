"""Assignment folders: the shipped one loads; a broken one names the file and the field."""

from __future__ import annotations

import pytest

from grader.assignments.model import AssignmentError, load_assignment, load_assignment_folder
from grader.settings import PROJECT_ROOT


def test_flask_notes_loads_with_four_categories():
    """flask-notes has the four scored categories of its rubric, 25 points each."""
    assignment = load_assignment(PROJECT_ROOT / "assignments", "flask-notes")
    assert [c.id for c in assignment.categories] == ["auth", "access_split", "migrations", "concurrency"]
    assert assignment.max_score == 100
    for category in assignment.categories:
        assert (assignment.tests_dir / f"test_{category.id}.py").is_file()


def test_unknown_assignment_lists_known_ones(tmp_path):
    """An unknown id says which assignments exist."""
    with pytest.raises(AssignmentError, match="flask-notes"):
        load_assignment(PROJECT_ROOT / "assignments", "nope")


def test_invalid_field_is_named(tmp_path):
    """A negative weight is reported with its file and field path."""
    (tmp_path / "assignment.toml").write_text(
        'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "auth"\ntitle = "A"\nweight = -1\n'
    )
    with pytest.raises(AssignmentError, match=r"assignment.toml: categories\.0\.weight"):
        load_assignment_folder(tmp_path)


def test_lanes_group_categories_in_first_appearance_order(tmp_path):
    """Categories of one lane stay in file order; the lane of the first category comes first."""
    (tmp_path / "assignment.toml").write_text(
        'id = "x"\ntitle = "X"\nversion = "1"\n'
        + "".join(
            f'[[categories]]\nid = "{cid}"\ntitle = "{cid}"\nweight = 1\n' + (f'lane = "{lane}"\n' if lane else "")
            for cid, lane in [("a", None), ("b", "cli"), ("c", None), ("d", "cli")]
        )
    )
    lanes = load_assignment_folder(tmp_path).lanes()
    assert [[c.id for c in lane] for lane in lanes] == [["a", "c"], ["b", "d"]]
    assert [lane[0].lane for lane in lanes] == ["main", "cli"]


def test_lane_name_must_fit_a_socket_path(tmp_path):
    """A lane names a socket folder, so it is short and plain."""
    (tmp_path / "assignment.toml").write_text(
        'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "a"\ntitle = "A"\nweight = 1\nlane = "../x"\n'
    )
    with pytest.raises(AssignmentError, match=r"categories\.0\.lane"):
        load_assignment_folder(tmp_path)


def _toml(categories: list[tuple[str, str | None, bool]]) -> str:
    return 'id = "x"\ntitle = "X"\nversion = "1"\n' + "".join(
        f'[[categories]]\nid = "{cid}"\ntitle = "{cid}"\nweight = 1\n'
        + (f'lane = "{lane}"\n' if lane else "")
        + ("idle_start = true\n" if idle else "")
        for cid, lane, idle in categories
    )


@pytest.mark.parametrize(
    ("categories", "valid"),
    [
        ([("a", None, False), ("b", "cli", True), ("c", "cli", False)], True),
        ([("a", None, True), ("b", "cli", False)], False),
        ([("a", None, False), ("b", "cli", False), ("c", "cli", True)], False),
    ],
    ids=["begins a later lane", "first lane", "not first in its lane"],
)
def test_idle_start_only_where_a_lane_begins(tmp_path, categories, valid):
    """idle_start means something only for the category that begins a lane after the first; elsewhere it is refused."""
    (tmp_path / "assignment.toml").write_text(_toml(categories))
    if valid:
        assert [c.idle_start for c in load_assignment_folder(tmp_path).categories] == [False, True, False]
    else:
        with pytest.raises(AssignmentError, match="idle_start applies only"):
            load_assignment_folder(tmp_path)


def test_starter_files_must_be_inside_the_assignment(tmp_path):
    """`starter` names what candidates were given (never counted as similar); a path out of the folder is refused."""
    base = 'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "a"\ntitle = "A"\nweight = 1\n'
    (tmp_path / "starter").mkdir()
    (tmp_path / "starter" / "app.py").write_text("from flask import Flask\n")
    (tmp_path / "assignment.toml").write_text('starter = ["starter"]\n' + base)
    assert load_assignment_folder(tmp_path).starter_paths == [tmp_path.resolve() / "starter"]
    for outside in ("../", "missing/"):
        (tmp_path / "assignment.toml").write_text(f'starter = ["{outside}"]\n' + base)
        with pytest.raises(AssignmentError, match="starter"):
            load_assignment_folder(tmp_path)


def test_behind_nginx_the_app_binds_its_own_port(tmp_path):
    """With nginx among the services the relay targets Nginx's `port` and the serve command binds `app_port`."""
    base = 'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "a"\ntitle = "A"\nweight = 1\n'
    run = '[run]\nserve = "gunicorn --bind 127.0.0.1:8000 wsgi:app"\nport = 8080\nservices = ["postgresql", "nginx"]\n'
    (tmp_path / "assignment.toml").write_text(base + run + "app_port = 8000\n")
    assignment = load_assignment_folder(tmp_path)
    assert (assignment.run.port, assignment.run.app_port, assignment.run.services) == (8080, 8000, ["postgresql", "nginx"])
    for wrong in ("", "app_port = 8080\n", "app_port = 9000\n"):
        (tmp_path / "assignment.toml").write_text(base + run + wrong)
        with pytest.raises(AssignmentError, match="app_port"):
            load_assignment_folder(tmp_path)
    (tmp_path / "assignment.toml").write_text(base + run.replace('"nginx"', '"mysql"'))
    with pytest.raises(AssignmentError, match="services"):
        load_assignment_folder(tmp_path)


def test_lane_weight_counts_containers_unless_the_assignment_measured_it(tmp_path):
    """An app alone weighs one slot; services and a worker add one each; `run.lane_weight` overrides the count."""
    def weight(run: str) -> int:
        (tmp_path / "assignment.toml").write_text(
            'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "auth"\ntitle = "A"\nweight = 1\n' + run
        )
        return load_assignment_folder(tmp_path).lane_weight()

    stack = '[run]\nservices = ["postgresql", "redis"]\n{}[run.worker]\ncommand = "celery worker"\nready = "celery ping"\n'
    assert weight("") == 1
    assert weight(stack.format("")) == 3
    assert weight(stack.format("lane_weight = 1\n")) == 1
    with pytest.raises(AssignmentError, match="lane_weight"):
        weight("[run]\nlane_weight = 0\n")
