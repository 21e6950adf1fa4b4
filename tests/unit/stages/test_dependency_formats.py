"""Lock files and pyproject.toml as data: each format's parse, the project itself skipped, other sources refused."""

from __future__ import annotations

import json

import pytest

from grader.errors import BuildFailed
from grader.stages.dependency_formats import parse

PYPI = 'source = { registry = "https://pypi.org/simple" }'

UV_LOCK = f'''version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "click"
version = "8.5.1"
{PYPI}
dependencies = [
    {{ name = "colorama", marker = "sys_platform == 'win32'" }},
]

[[package]]
name = "colorama"
version = "0.4.6"
{PYPI}

[[package]]
name = "flask"
version = "3.1.3"
{PYPI}
dependencies = [{{ name = "click" }}]

[[package]]
name = "greenlet"
version = "3.5.6"
{PYPI}

[[package]]
name = "notes"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "flask" }},
    {{ name = "sqlalchemy", extra = ["asyncio"] }},
]

[package.dev-dependencies]
dev = [{{ name = "pytest" }}]

[[package]]
name = "pytest"
version = "9.0.0"
source = {{ git = "https://github.com/pytest-dev/pytest?rev=main#abc" }}

[[package]]
name = "sqlalchemy"
version = "2.0.58"
{PYPI}

[package.optional-dependencies]
asyncio = [{{ name = "greenlet" }}]
'''


def _lines(file: str, content: str) -> list[str]:
    return [line for _where, line in parse(file, content.encode())]


def test_uv_lock_gives_the_locked_versions_the_project_needs_with_their_markers():
    """The root's dependencies and their extras, through the graph; the root and its dev group are left out."""
    assert sorted(_lines("uv.lock", UV_LOCK)) == [
        "click==8.5.1", "colorama==0.4.6 ; sys_platform == 'win32'", "flask==3.1.3", "greenlet==3.5.6",
        "sqlalchemy==2.0.58",
    ]


def test_uv_lock_a_package_needed_everywhere_and_on_one_platform_is_needed_everywhere():
    lock = UV_LOCK.replace('dependencies = [{ name = "click" }]', 'dependencies = [{ name = "click" }, { name = "colorama" }]')
    assert "colorama==0.4.6" in _lines("uv.lock", lock)


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ('{ git = "https://evil.example/x.git?rev=main#abc" }', "git source"),
        ('{ url = "https://evil.example/x-1.0.tar.gz" }', "url source"),
        ('{ path = "wheels/x-1.0-py3-none-any.whl" }', "path source"),
        ('{ directory = "../x" }', "directory source"),
        ('{ editable = "packages/x" }', "editable source"),
        ('{ registry = "https://evil.example/simple" }', "index 'https://evil.example/simple', not PyPI"),
    ],
)
def test_uv_lock_a_needed_package_from_another_source_is_refused_naming_it(source, named):
    lock = UV_LOCK.replace(f'name = "flask"\nversion = "3.1.3"\n{PYPI}', f'name = "flask"\nversion = "3.1.3"\nsource = {source}')
    with pytest.raises(BuildFailed, match=f"^uv.lock, package 'flask': it comes from (an?|the) {named}"):
        parse("uv.lock", lock.encode())


def test_uv_lock_versions_and_markers_must_be_plain_values():
    """A version or marker smuggling an option or a second line is refused before the line policy."""
    with pytest.raises(BuildFailed, match="not a plain version"):
        parse("uv.lock", UV_LOCK.replace('version = "3.1.3"', 'version = "3.1.3 --index-url=https://evil"').encode())
    with pytest.raises(BuildFailed, match="not a plain marker"):
        parse("uv.lock", UV_LOCK.replace("sys_platform == 'win32'", "sys_platform == 'x'\\n--index-url=x").encode())


def test_uv_lock_that_is_not_toml_is_refused():
    with pytest.raises(BuildFailed, match="uv.lock is not valid TOML"):
        parse("uv.lock", b"[[package]\n")


POETRY_LOCK = '''[[package]]
name = "Flask"
version = "3.1.3"
description = "A simple framework"
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = [{file = "flask-3.1.3-py3-none-any.whl", hash = "sha256:aa"}]

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
python-versions = "*"
groups = ["main", "dev"]
markers = "platform_system == \\"Windows\\""

[[package]]
name = "pytest"
version = "8.0.0"
optional = false
python-versions = ">=3.8"
groups = ["dev"]

[[package]]
name = "greenlet"
version = "3.5.6"
optional = true
python-versions = ">=3.9"
groups = ["main"]

[metadata]
lock-version = "2.1"
python-versions = "^3.11"
content-hash = "abc"
'''


def test_poetry_lock_gives_the_main_group_without_extras_only_packages():
    assert _lines("poetry.lock", POETRY_LOCK) == ["Flask==3.1.3", 'colorama==0.4.6 ; platform_system == "Windows"']


def test_poetry_1_lock_uses_the_category():
    lock = '[[package]]\nname = "flask"\nversion = "3.1.3"\ncategory = "main"\noptional = false\n\n' \
           '[[package]]\nname = "pytest"\nversion = "8.0.0"\ncategory = "dev"\noptional = false\n'
    assert _lines("poetry.lock", lock) == ["flask==3.1.3"]


@pytest.mark.parametrize("kind", ["git", "url", "file", "directory", "legacy"])
def test_poetry_lock_a_package_from_another_source_is_refused_naming_it(kind):
    lock = POETRY_LOCK.replace('groups = ["main"]\nfiles', f'groups = ["main"]\nsource = {{type = "{kind}", url = "https://evil.example/x"}}\nfiles')
    with pytest.raises(BuildFailed, match=f"^poetry.lock, package 'Flask': it comes from a {kind} source"):
        parse("poetry.lock", lock.encode())


PIPFILE_LOCK = {
    "_meta": {"sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}]},
    "default": {
        "flask": {"hashes": ["sha256:aa"], "index": "pypi", "version": "==3.1.3"},
        "colorama": {"version": "==0.4.6", "markers": "sys_platform == 'win32'"},
        "sqlalchemy": {"version": "==2.0.58", "extras": ["asyncio"]},
    },
    "develop": {"pytest": {"version": "==8.0.0"}},
}


def test_pipfile_lock_gives_the_default_section():
    assert _lines("Pipfile.lock", json.dumps(PIPFILE_LOCK)) == [
        "flask==3.1.3", "colorama==0.4.6 ; sys_platform == 'win32'", "sqlalchemy[asyncio]==2.0.58",
    ]


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"git": "https://evil.example/x.git", "ref": "abc"}, "git source"),
        ({"path": "./evilpkg", "editable": True}, "path source"),
        ({"file": "https://evil.example/x.whl"}, "file source"),
        ({"version": "==1.0", "index": "private"}, "index 'https://evil.example/simple', not PyPI"),
        ({"version": ">=1.0"}, "is not pinned with =="),
    ],
)
def test_pipfile_lock_entries_from_another_source_are_refused_naming_them(entry, named):
    lock = json.loads(json.dumps(PIPFILE_LOCK))
    lock["_meta"]["sources"].append({"name": "private", "url": "https://evil.example/simple"})
    lock["default"]["evil"] = entry
    with pytest.raises(BuildFailed, match=f"^Pipfile.lock, package 'evil': .*{named}"):
        parse("Pipfile.lock", json.dumps(lock).encode())


def test_pyproject_gives_the_project_dependencies_as_written():
    content = '[project]\nname = "notes"\n' \
              'dependencies = ["Flask==3.1.3", "sqlalchemy[asyncio]>=2 ; python_version >= \'3.11\'"]\n' \
              '[project.optional-dependencies]\ndev = ["pytest"]\n'
    assert _lines("pyproject.toml", content) == ["Flask==3.1.3", "sqlalchemy[asyncio]>=2 ; python_version >= '3.11'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[tool.poetry.dependencies]\nflask = "^3"\n', r"no \[project\] dependencies \(a Poetry project: commit poetry.lock\)"),
        ('[project]\nname = "n"\ndynamic = ["dependencies"]\n', "dynamic"),
        ('[project]\nname = "n"\ndependencies = ["flask"]\n[tool.uv.sources]\nflask = { git = "https://x" }\n',
         r"\[tool.uv.sources\] sends flask to another source"),
        ('[project]\nname = "n"\ndependencies = "flask"\n', "not a list of strings"),
        ("[project\n", "not valid TOML"),
    ],
)
def test_pyproject_without_plain_dependencies_is_refused_saying_why(content, message):
    with pytest.raises(BuildFailed, match=message):
        parse("pyproject.toml", content.encode())
