"""requirements.lock, which `make setup` and the deployment image (Dockerfile) install with --require-hashes, pins
every dependency pyproject.toml names, inside its range, and none of the packages only our tests need."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from grader.settings import PROJECT_ROOT

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)==([^\s\\;]+)")


def _locked() -> dict[str, tuple[str, bool]]:
    """name -> (version, whether hashes follow)."""
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    found: dict[str, tuple[str, bool]] = {}
    for number, line in enumerate(lines):
        match = _PIN.match(line)
        if match:
            hashed = number + 1 < len(lines) and lines[number + 1].strip().startswith("--hash=sha256:")
            found[canonicalize_name(match.group(1).split("[")[0])] = (match.group(2), hashed)
    return found


def test_every_dependency_is_locked_in_range_with_hashes() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        version, hashed = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {requirement.specifier}"
        assert hashed, f"{name} is locked without hashes"


def test_test_only_packages_stay_out_of_the_lock() -> None:
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    locked = _locked()
    for spec in extras["test"] + extras["dev"]:
        name = canonicalize_name(Requirement(spec).name)
        assert name not in locked, f"{name} is a test or dev extra, yet the deployment image would install it"
