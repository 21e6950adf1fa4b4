"""The requirements policy: plain requirements pass; options that change package sources are refused; `-r`/`-c`
includes are followed inside the repository only; the formats' precedence; the layer key follows the pins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.errors import BuildFailed
from grader.models import Snapshot
from grader.stages.build import deps_key
from grader.stages.requirements import (
    MAX_INCLUDE_DEPTH,
    MAX_REQUIREMENTS_BYTES,
    check_requirements,
    read_dependencies,
)
from tests.conftest import REFERENCE
from tests.trees import snapshot_of, write_tree

BASE = "sha256:" + "1" * 64
PINS = "flask==3.1.3\ngunicorn==23.0.0\n"


def test_plain_requirements_pass():
    """Names, versions, extras, markers, hashes and comments are accepted."""
    check_requirements(
        b"# comment\nflask==3.1.3\nrequests[socks]>=2.0 ; python_version >= '3.8'\n\n"
        b"gunicorn==23.0.0 --hash=sha256:abc  # pinned\n--prefer-binary\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://evil.example/simple", "-i https://evil.example/simple",
        "--extra-index-url=https://evil.example/simple", "--find-links /tmp/wheels", "-f https://x",
        "--trusted-host evil.example", "-e git+https://evil.example/x.git#egg=x", "-r other.txt",
        "-c constraints.txt", "flask --index-url https://evil.example/simple",
        "evil @ https://evil.example/evil.tar.gz", "https://evil.example/evil.whl", "./localpkg",
        "git+https://evil.example/x.git", "/abs/path/pkg", "${PKG}", "flask==${VERSION}",
    ],
)
def test_source_changing_lines_are_refused_with_line_number(line):
    """Each option or URL that changes where code comes from is build_failed, naming the line."""
    with pytest.raises(BuildFailed, match="requirements.txt line 2"):
        check_requirements(f"flask==3.1.3\n{line}\n".encode())


def test_binary_content_is_refused():
    """A requirements file that is not text is refused clearly."""
    with pytest.raises(BuildFailed, match="not UTF-8"):
        check_requirements(b"\xff\xfe\x00flask")


def test_continuation_lines_are_joined_as_pip_does():
    """pip-compile's `\\` continuations with hashes on the next line are one requirement."""
    lines = check_requirements(b"flask==3.1.3 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\n# via x\n")
    assert lines == ["flask==3.1.3 --hash=sha256:aaa --hash=sha256:bbb"]


def test_lines_are_normalized_to_the_same_meaning():
    """Canonical names, no spaces in the specifier, one space elsewhere, comments gone."""
    assert check_requirements(b"Flask_Login == 0.6.3   ;  python_version>'3'  # why\n") == [
        "flask-login==0.6.3 ; python_version>'3'"
    ]


# --- includes -----------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Snapshot:
    return snapshot_of(write_tree(root, files, links))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    return tmp_path / "repo"


def test_includes_inside_the_repository_are_followed_relative_to_the_including_file(repo):
    """`-r`, `--requirement`, `-rFILE` and `--requirement=FILE` are read, each relative to its own file, recursively."""
    deps = read_dependencies(_tree(repo, {
        "requirements.txt": "-r requirements/prod.txt\n",
        "requirements/prod.txt": "--requirement base.txt\ngunicorn==23.0.0\n-rextra/one.txt\n",
        "requirements/base.txt": "flask==3.1.3\n--requirement=../top.txt\n",
        "requirements/extra/one.txt": "blinker==1.9.0\n",
        "top.txt": "click==8.5.1\n",
    }))
    assert deps.format == "requirements"
    assert deps.files == ("requirements.txt", "requirements/prod.txt", "requirements/base.txt", "top.txt",
                          "requirements/extra/one.txt")
    assert deps.requirements == b"blinker==1.9.0\nclick==8.5.1\nflask==3.1.3\ngunicorn==23.0.0\n"
    assert deps.constraints == b""


def test_constraints_are_followed_into_their_own_text(repo):
    """`-c FILE` / `--constraint=FILE` lines constrain; they are kept apart from the requirements."""
    deps = read_dependencies(_tree(repo, {
        "requirements.txt": "flask\n-c constraints.txt\n",
        "constraints.txt": "flask==3.1.3\n--constraint=more/c.txt\n",
        "more/c.txt": "werkzeug==3.1.9\n",
    }))
    assert deps.requirements == b"flask\n"
    assert deps.constraints == b"flask==3.1.3\nwerkzeug==3.1.9\n"
    assert deps.files == ("requirements.txt", "constraints.txt", "more/c.txt")
    assert b"# constraints\n" in deps.text


def test_a_policy_breach_in_an_included_file_names_that_file_and_line(repo):
    snapshot = _tree(repo, {"requirements.txt": "-r requirements/prod.txt\n",
                            "requirements/prod.txt": "flask==3.1.3\n--index-url https://evil.example/simple\n"})
    with pytest.raises(BuildFailed, match=r"^requirements/prod.txt line 2: the option '--index-url' is not allowed"):
        read_dependencies(snapshot)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-r ../outside.txt", r"requirements.txt line 2: ../outside.txt is outside the repository"),
        ("-r requirements/../../outside.txt", r"requirements.txt line 2: requirements/../../outside.txt is outside"),
        ("-c ../outside.txt", r"requirements.txt line 2: ../outside.txt is outside the repository"),
        ("--requirement={outside}", r"requirements.txt line 2: /.*outside.txt is an absolute path, outside the repository"),
        ("-r {outside}", r"requirements.txt line 2: /.*outside.txt is an absolute path"),
        ("-r ~/outside.txt", r"requirements.txt line 2: ~/outside.txt is an absolute path"),
        ("-r https://evil.example/r.txt", r"requirements.txt line 2: .* must name one file of the repository"),
        ("-r missing.txt", r"requirements.txt line 2: missing.txt does not exist in the repository"),
        ("-r", r"requirements.txt line 2: .* must name one file"),
    ],
)
def test_includes_that_leave_the_repository_are_refused_naming_the_line(repo, line, message, monkeypatch):
    """`..` out of the repository, absolute paths and URLs are refused; the file outside is never opened."""
    outside = repo.parent / "outside.txt"
    outside.write_text("evil==1.0\n")
    opened = _spy_opens(monkeypatch)
    snapshot = _tree(repo, {"requirements.txt": f"flask==3.1.3\n{line.format(outside=outside)}\n"})
    with pytest.raises(BuildFailed, match=message):
        read_dependencies(snapshot)
    assert os.path.realpath(repo / "requirements.txt") in opened, "the spy saw nothing"
    assert str(outside) not in opened


def _spy_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the real path of every file `os.open` opens from now on."""
    opened: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(path, str | os.PathLike):
            opened.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return opened


def test_a_file_symlink_to_outside_is_refused_and_never_read(repo, monkeypatch):
    outside = repo.parent / "secret.txt"
    outside.write_text("evil==1.0\n")
    snapshot = _tree(repo, {"requirements.txt": "-r deps/extra.txt\n"}, links={"deps/extra.txt": str(outside)})
    opened = _spy_opens(monkeypatch)
    with pytest.raises(BuildFailed, match=r"requirements.txt line 1: deps/extra.txt is a symbolic link .* outside the repo"):
        read_dependencies(snapshot)
    assert str(outside) not in opened


def test_a_directory_symlink_to_outside_is_refused_and_never_read(repo, monkeypatch):
    """A link anywhere on the path counts: `deps -> /outside`, `-r deps/secret.txt`."""
    (repo.parent / "host").mkdir()
    (repo.parent / "host" / "secret.txt").write_text("evil==1.0\n")
    snapshot = _tree(repo, {"requirements.txt": "flask\n", "sub/r.txt": "-r ../deps/secret.txt\n"},
                     links={"deps": str(repo.parent / "host")})
    (repo / "requirements.txt").write_text("-r sub/r.txt\n")
    opened = _spy_opens(monkeypatch)
    with pytest.raises(BuildFailed, match=r"sub/r.txt line 1: ../deps/secret.txt is a symbolic link"):
        read_dependencies(snapshot)
    assert str(repo.parent / "host" / "secret.txt") not in opened


def test_a_root_requirements_txt_linking_outside_is_refused(repo):
    (repo.parent / "secret.txt").write_text("evil==1.0\n")
    snapshot = _tree(repo, {}, links={"requirements.txt": str(repo.parent / "secret.txt")})
    with pytest.raises(BuildFailed, match=r"^requirements.txt is a symbolic link .*not a regular file"):
        read_dependencies(snapshot)


def test_symlinks_inside_the_repository_are_followed(repo):
    deps = read_dependencies(_tree(repo, {"real/prod.txt": PINS, "requirements.txt": "-r link.txt\n"},
                                   links={"link.txt": "real/prod.txt"}))
    assert deps.requirements == PINS.encode()
    assert deps.files == ("requirements.txt", "real/prod.txt")


def test_an_include_cycle_is_refused_naming_the_chain(repo):
    snapshot = _tree(repo, {"requirements.txt": "-r a.txt\n", "a.txt": "flask\n-r b.txt\n", "b.txt": "-r a.txt\n"})
    chain = r"\(requirements.txt -> a.txt -> b.txt -> a.txt\)"
    with pytest.raises(BuildFailed, match=r"b.txt line 1: including a.txt makes a cycle " + chain):
        read_dependencies(snapshot)


def test_a_file_including_itself_is_a_cycle(repo):
    with pytest.raises(BuildFailed, match="makes a cycle"):
        read_dependencies(_tree(repo, {"requirements.txt": "-r ./requirements.txt\n"}))


def test_the_same_file_twice_is_not_a_cycle(repo):
    """Two files may include one common file (a diamond); its pins appear once."""
    deps = read_dependencies(_tree(repo, {"requirements.txt": "-r a.txt\n-r b.txt\n", "a.txt": "-r common.txt\n",
                                          "b.txt": "-r common.txt\n", "common.txt": PINS}))
    assert deps.requirements == PINS.encode()


def test_includes_deeper_than_the_limit_are_refused(repo):
    files = {"requirements.txt": "-r d1.txt\n"}
    files |= {f"d{i}.txt": f"-r d{i + 1}.txt\n" for i in range(1, MAX_INCLUDE_DEPTH + 2)}
    with pytest.raises(BuildFailed, match=f"nest deeper than {MAX_INCLUDE_DEPTH}"):
        read_dependencies(_tree(repo, files))
    ok = {"requirements.txt": "-r d1.txt\n", **{f"d{i}.txt": f"-r d{i + 1}.txt\n" for i in range(1, MAX_INCLUDE_DEPTH)}}
    ok[f"d{MAX_INCLUDE_DEPTH}.txt"] = PINS
    assert read_dependencies(_tree(repo, ok)).requirements == PINS.encode()


def test_includes_over_the_total_size_are_refused(repo):
    """Each file is bounded, and so is their sum (a diamond of big files cannot grow it)."""
    big = "# " + "x" * (MAX_REQUIREMENTS_BYTES - 10) + "\nflask\n"
    files = {"requirements.txt": "".join(f"-r f{i}.txt\n" for i in range(5)), **{f"f{i}.txt": big for i in range(5)}}
    with pytest.raises(BuildFailed, match="hold more than"):
        read_dependencies(_tree(repo, files))


def test_one_oversized_included_file_is_refused(repo):
    snapshot = _tree(repo, {"requirements.txt": "-r big.txt\n", "big.txt": "#" * (MAX_REQUIREMENTS_BYTES + 1)})
    with pytest.raises(BuildFailed, match=f"requirements.txt line 1: big.txt is larger than {MAX_REQUIREMENTS_BYTES}"):
        read_dependencies(snapshot)


# --- formats, precedence, the key ---------------------------------------------------------------


def test_no_dependency_file_at_all_names_what_is_accepted(repo):
    with pytest.raises(BuildFailed, match="no requirements.txt .*uv.lock, poetry.lock, Pipfile.lock or a pyproject.toml"):
        read_dependencies(_tree(repo, {"wsgi.py": ""}))
    with pytest.raises(BuildFailed, match="commit Pipfile.lock"):
        read_dependencies(_tree(repo, {"Pipfile": "[packages]\nflask = '*'\n"}))


PYPROJECT = '[project]\nname = "notes"\nversion = "0"\ndependencies = ["flask==3.1.3", "gunicorn==23.0.0"]\n'
UV_LOCK = (
    'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n'
    '[[package]]\nname = "notes"\nversion = "0"\nsource = { virtual = "." }\n'
    'dependencies = [{ name = "flask" }]\n\n'
    '[[package]]\nname = "flask"\nversion = "3.1.2"\nsource = { registry = "https://pypi.org/simple" }\n'
)
POETRY_LOCK = '[[package]]\nname = "flask"\nversion = "3.1.1"\noptional = false\ngroups = ["main"]\n'
PIPFILE_LOCK = '{"_meta": {"sources": []}, "default": {"flask": {"version": "==3.1.0"}}, "develop": {}}'


@pytest.mark.parametrize(
    ("files", "expected_format", "expected"),
    [
        ({"requirements.txt": "flask==1\n", "uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT}, "requirements", b"flask==1\n"),
        ({"uv.lock": UV_LOCK, "poetry.lock": POETRY_LOCK, "pyproject.toml": PYPROJECT}, "uv.lock", b"flask==3.1.2\n"),
        ({"poetry.lock": POETRY_LOCK, "Pipfile.lock": PIPFILE_LOCK, "pyproject.toml": PYPROJECT}, "poetry.lock",
         b"flask==3.1.1\n"),
        ({"Pipfile.lock": PIPFILE_LOCK, "pyproject.toml": PYPROJECT}, "Pipfile.lock", b"flask==3.1.0\n"),
        ({"pyproject.toml": PYPROJECT}, "pyproject.toml", PINS.encode()),
    ],
)
def test_precedence_requirements_then_locks_then_the_manifest(repo, files, expected_format, expected):
    """requirements.txt, uv.lock, poetry.lock, Pipfile.lock, pyproject.toml: the first present wins."""
    deps = read_dependencies(_tree(repo, files))
    assert (deps.format, deps.requirements) == (expected_format, expected)
    assert deps.provenance()["dependency_format"] == expected_format
    assert deps.provenance()["dependencies_sha256"] == deps.sha256


def test_a_policy_breach_in_pyproject_names_the_file_and_item(repo):
    snapshot = _tree(repo, {"pyproject.toml": '[project]\nname = "n"\ndependencies = ["flask", "evil @ https://x/e.whl"]\n'})
    with pytest.raises(BuildFailed, match=r"pyproject.toml, \[project\] dependencies item 2: .* installs from a URL"):
        read_dependencies(snapshot)


def test_a_lock_file_linking_outside_is_refused(repo):
    (repo.parent / "uv.lock").write_text(UV_LOCK)
    with pytest.raises(BuildFailed, match="uv.lock is a symbolic link"):
        read_dependencies(_tree(repo, {}, links={"uv.lock": str(repo.parent / "uv.lock")}))


def test_a_split_layout_and_a_flat_one_with_the_same_pins_share_a_layer(repo):
    """The reference's requirements.txt, flat or behind `-r requirements/prod.txt` (reordered, other comments),
    or as pyproject dependencies, give one normalized text, hence one deps_key."""
    pins = (REFERENCE / "requirements.txt").read_text()
    flat = read_dependencies(_tree(repo / "flat", {"requirements.txt": pins}))
    reordered = "\n".join(reversed([line for line in pins.splitlines() if line and not line.startswith("#")]))
    split = read_dependencies(_tree(repo / "split", {"requirements.txt": "# see requirements/\n-r requirements/prod.txt\n",
                                                     "requirements/prod.txt": reordered + "  # all pinned\n"}))
    names = [line.strip() for line in pins.splitlines() if line.strip() and not line.startswith("#")]
    listed = ", ".join(f'"{name}"' for name in names)
    pyproject = f'[project]\nname = "n"\ndependencies = [{listed}]\n'
    project = read_dependencies(_tree(repo / "pyproject", {"pyproject.toml": pyproject}))
    assert flat.requirements == split.requirements == project.requirements
    assert deps_key(BASE, flat.requirements) == deps_key(BASE, split.requirements) == deps_key(BASE, project.requirements)
    assert flat.sha256 == split.sha256
    assert split.files == ("requirements.txt", "requirements/prod.txt")
    other = read_dependencies(_tree(repo / "other", {"requirements.txt": pins.replace("Flask==3.1.3", "Flask==3.1.2")}))
    assert deps_key(BASE, other.requirements) != deps_key(BASE, flat.requirements)


def test_constraints_change_the_key(repo):
    deps = read_dependencies(_tree(repo, {"requirements.txt": "flask\n-c c.txt\n", "c.txt": "flask==3.1.3\n"}))
    assert deps_key(BASE, deps.requirements, deps.constraints) != deps_key(BASE, deps.requirements)


def test_a_real_uv_lock_of_the_reference_shares_the_flat_reference_layer(repo):
    """The uv.lock that `uv lock` made of the reference's pins (tests/integration/layouts) locks exactly them."""
    layouts = Path(__file__).resolve().parents[2] / "integration" / "layouts"
    locked = read_dependencies(_tree(repo / "lock", {"uv.lock": (layouts / "uv.lock").read_text(),
                                                     "pyproject.toml": (layouts / "pyproject.toml").read_text()}))
    flat = read_dependencies(_tree(repo / "flat", {"requirements.txt": (REFERENCE / "requirements.txt").read_text()}))
    assert (locked.format, locked.files) == ("uv.lock", ("uv.lock",))
    assert locked.requirements == flat.requirements
    assert deps_key(BASE, locked.requirements) == deps_key(BASE, flat.requirements)
