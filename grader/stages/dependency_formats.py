"""Lock files and pyproject.toml, read as data into requirement lines (`name==version ; marker`).

Parsed with the standard library (tomllib, json) on the host: nothing of the repository is built, imported
or run, so the policy of `requirements.py` judges every line before any install. (uv could export these
itself, but only inside a build container, after the policy could have refused them.) A package from a
git, URL, path or editable source, or from an index other than PyPI, is refused naming the file and the
package; the project itself (uv's root, `virtual`/`editable` at ".") is skipped, never built.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

from grader.errors import BuildFailed

Lines = list[tuple[str, str]]  # (where, for a reason; requirement line)

_PYPI = ("https://pypi.org/simple", "https://pypi.org/simple/", "https://pypi.python.org/simple", "https://pypi.python.org/simple/")
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9.+!_-]{1,64}$")
_UNSAFE = re.compile(r"[\n\r\\#$\x00]")
MAX_PACKAGES = 2000
MAX_MARKER = 2000


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _refuse(file: str, package: str, what: str) -> BuildFailed:
    return BuildFailed(
        f"{file}, package {package!r}: {what}; the grader installs packages by name and version from its "
        "package index only, so depend on a released version"
    )


def _line(file: str, name: object, version: object, marker: object = None, extras: object = ()) -> tuple[str, str]:
    """One `name[extras]==version ; marker` line, its parts checked to be plain values."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise BuildFailed(f"{file}: a package name {str(name)[:60]!r} is not a valid name")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise BuildFailed(f"{file}, package {name!r}: the version {str(version)[:60]!r} is not a plain version")
    if not isinstance(extras, list | tuple) or not all(isinstance(e, str) and _NAME.match(e) for e in extras):
        raise BuildFailed(f"{file}, package {name!r}: its extras are not plain names")
    if marker is not None and (not isinstance(marker, str) or _UNSAFE.search(marker) or len(marker) > MAX_MARKER):
        raise BuildFailed(f"{file}, package {name!r}: its environment marker is not a plain marker")
    line = name + (f"[{','.join(sorted(extras))}]" if extras else "") + f"=={version}"
    return f"{file}, package {name!r}", line + (f" ; {marker}" if marker else "")


def _toml(file: str, content: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildFailed(f"{file} is not valid TOML: {str(exc)[:200]}") from None


def _packages(file: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    packages = data.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise BuildFailed(f"{file}: [[package]] entries are not tables")
    if len(packages) > MAX_PACKAGES:
        raise BuildFailed(f"{file} locks more than {MAX_PACKAGES} packages")
    return packages


# --- uv.lock ------------------------------------------------------------------------------------


def _is_root(package: dict[str, Any]) -> bool:
    source = package.get("source")
    return isinstance(source, dict) and (source.get("virtual") == "." or source.get("editable") == ".")


def _uv_source(file: str, package: dict[str, Any]) -> str:
    """'root' for the project itself, 'registry' for a PyPI package; anything else (once reached) is refused."""
    source = package.get("source", {})
    name = str(package.get("name"))
    if not isinstance(source, dict):
        raise BuildFailed(f"{file}, package {name!r}: its source is not a table")
    if _is_root(package):
        return "root"
    registry = source.get("registry")
    if registry is not None:
        if registry not in _PYPI:
            raise _refuse(file, name, f"it comes from the index {str(registry)[:80]!r}, not PyPI")
        return "registry"
    kind = next(iter(source), "unknown")
    raise _refuse(file, name, f"it comes from a {kind} source ({str(source.get(kind))[:80]!r})")


def _or(markers: set[str] | None) -> str | None:
    if markers is None:
        return None
    ordered = sorted(markers)
    return ordered[0] if len(ordered) == 1 else " or ".join(f"({m})" for m in ordered)


def parse_uv_lock(file: str, content: bytes) -> Lines:
    """The packages the root project needs (its `dependencies` and their extras, through the locked graph),
    each `name==version`, with the environment markers of the edges that reach it."""
    packages = _packages(file, _toml(file, content))
    by_name: dict[str, list[int]] = {}
    for index, package in enumerate(packages):
        by_name.setdefault(_canonical(str(package.get("name", ""))), []).append(index)
    roots = [i for i, p in enumerate(packages) if _is_root(p)]
    markers: dict[int, set[str] | None] = {}  # None: needed everywhere; else needed where one of these holds
    extras: dict[int, set[str]] = {}
    work: list[int] = []

    def reach(edge: object, parent: set[str] | None, holder: str) -> None:
        if not isinstance(edge, dict) or not isinstance(edge.get("name"), str):
            raise BuildFailed(f"{file}, package {holder!r}: a dependency is not a table with a name")
        found = [i for i in by_name.get(_canonical(edge["name"]), [])
                 if "version" not in edge or packages[i].get("version") == edge["version"]]
        if not found:
            raise BuildFailed(f"{file}, package {holder!r}: its dependency {edge['name']!r} is not locked; run `uv lock`")
        target, condition = found[0], edge.get("marker")
        if condition is not None and not isinstance(condition, str):
            raise BuildFailed(f"{file}, package {holder!r}: a dependency marker is not a string")
        if condition is None:
            new = parent
        elif parent is None:
            new = {condition}
        else:
            new = {f"({p}) and ({condition})" for p in parent}
        old = markers.get(target, set())
        merged = None if old is None or new is None else old | new
        wanted = set(edge.get("extra", [])) if isinstance(edge.get("extra", []), list) else set()
        if target not in markers or merged != old or not wanted <= extras.get(target, set()):
            if merged is not None and len(_or(merged) or "") > MAX_MARKER:
                merged = None  # too many paths to say when it is needed: install it everywhere
            markers[target] = merged
            extras.setdefault(target, set()).update(wanted)
            work.append(target)

    for root in roots or range(len(packages)):
        if roots:
            for edge in packages[root].get("dependencies", []):
                reach(edge, None, str(packages[root].get("name")))
        elif _uv_source(file, packages[root]) == "registry":
            markers[root], extras[root] = None, set()
    steps = 0
    while work:
        steps += 1
        if steps > 20 * MAX_PACKAGES:
            raise BuildFailed(f"{file}: the dependency graph is too large to follow")
        index = work.pop()
        package = packages[index]
        if _uv_source(file, package) == "root":
            continue
        optional = package.get("optional-dependencies", {})
        edges = list(package.get("dependencies", []))
        for extra in sorted(extras.get(index, set())):
            edges += optional.get(extra, []) if isinstance(optional, dict) else []
        for edge in edges:
            reach(edge, markers[index], str(package.get("name")))
    return [_line(file, packages[i].get("name"), packages[i].get("version"), _or(markers[i]))
            for i in sorted(markers) if _uv_source(file, packages[i]) != "root"]


# --- poetry.lock, Pipfile.lock ------------------------------------------------------------------


def parse_poetry_lock(file: str, content: bytes) -> Lines:
    """The `main` group's packages (Poetry 1: category "main"); optional (extras-only) packages are left out."""
    lines: Lines = []
    for package in _packages(file, _toml(file, content)):
        name = str(package.get("name"))
        groups, category = package.get("groups"), package.get("category")
        if package.get("optional") is True or (groups is not None and "main" not in groups):
            continue
        if groups is None and category not in (None, "main"):
            continue
        source = package.get("source")
        if isinstance(source, dict) and source:
            kind, url = source.get("type", "unknown"), source.get("url", "")
            if kind not in ("legacy", "explicit") or url not in _PYPI:
                raise _refuse(file, name, f"it comes from a {kind} source ({str(url)[:80]!r})")
        marker = package.get("markers")
        if isinstance(marker, dict):
            marker = marker.get("main")
        lines.append(_line(file, package.get("name"), package.get("version"), marker))
    return lines


def parse_pipfile_lock(file: str, content: bytes) -> Lines:
    """The `default` section (not `develop`): each `"version": "==X"` entry."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BuildFailed(f"{file} is not valid JSON: {str(exc)[:200]}") from None
    default = data.get("default", {}) if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise BuildFailed(f"{file}: its `default` section is not an object")
    meta = data.get("_meta", {})
    sources = meta.get("sources", []) if isinstance(meta, dict) else []
    indexes = {s.get("name"): s.get("url") for s in sources if isinstance(s, dict)} if isinstance(sources, list) else {}
    lines: Lines = []
    for name, entry in default.items():
        if not isinstance(entry, dict):
            raise BuildFailed(f"{file}, package {str(name)[:60]!r}: its entry is not an object")
        for key in ("git", "path", "file", "editable", "ref", "subdirectory"):
            if key in entry:
                raise _refuse(file, str(name), f"it comes from a {key} source ({str(entry[key])[:80]!r})")
        index = entry.get("index")
        if index is not None and indexes.get(index) not in _PYPI:
            raise _refuse(file, str(name), f"it comes from the index {str(indexes.get(index, index))[:80]!r}, not PyPI")
        version = entry.get("version")
        if not isinstance(version, str) or not version.startswith("=="):
            raise BuildFailed(f"{file}, package {str(name)[:60]!r}: its version {str(version)[:60]!r} is not pinned with ==")
        lines.append(_line(file, name, version[2:], entry.get("markers"), entry.get("extras", [])))
    return lines


# --- pyproject.toml -----------------------------------------------------------------------------


def parse_pyproject(file: str, content: bytes) -> Lines:
    """`[project] dependencies`, each a PEP 508 string judged by the line policy; the project is not built."""
    data = _toml(file, content)
    project = data.get("project")
    tool = data.get("tool", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(project, dict) or "dependencies" not in project and "dependencies" not in project.get("dynamic", []):
        hint = " (a Poetry project: commit poetry.lock)" if isinstance(tool.get("poetry"), dict) else ""
        raise BuildFailed(
            f"{file} has no [project] dependencies{hint}; list your dependencies there (PEP 621) or in requirements.txt"
        )
    if "dependencies" in project.get("dynamic", []):
        raise BuildFailed(
            f"{file}: [project] dependencies are dynamic (computed by the build backend), and the grader does not "
            "build your project; list them in [project] dependencies or in requirements.txt"
        )
    uv = tool.get("uv", {}) if isinstance(tool.get("uv"), dict) else {}
    sources = uv.get("sources", {})
    if isinstance(sources, dict) and sources:
        names = ", ".join(sorted(str(name) for name in sources))[:120]
        raise BuildFailed(
            f"{file}: [tool.uv.sources] sends {names} to another source; the grader installs packages by name "
            "and version from its package index only, so remove it or commit a requirements.txt"
        )
    dependencies = project["dependencies"]
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise BuildFailed(f"{file}: [project] dependencies is not a list of strings")
    if len(dependencies) > MAX_PACKAGES:
        raise BuildFailed(f"{file} lists more than {MAX_PACKAGES} dependencies")
    lines: Lines = []
    for number, dependency in enumerate(dependencies, start=1):
        if _UNSAFE.search(dependency):
            raise BuildFailed(f"{file}, [project] dependencies item {number}: {dependency[:80]!r} is not a plain requirement")
        lines.append((f"{file}, [project] dependencies item {number}", dependency))
    return lines


PARSERS: dict[str, Callable[[str, bytes], Lines]] = {
    "uv.lock": parse_uv_lock,
    "poetry.lock": parse_poetry_lock,
    "Pipfile.lock": parse_pipfile_lock,
    "pyproject.toml": parse_pyproject,
}


def parse(file: str, content: bytes) -> Lines:
    """The requirement lines of one of the formats above (named by its file name)."""
    return PARSERS[file](file, content)
