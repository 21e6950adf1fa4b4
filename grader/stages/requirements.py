"""Which dependencies a submission asks for, and whether the grader may install them.

Read from the snapshot on the host (never through the candidate's code): the bytes of `requirements.txt`,
each line under one policy: packages by name and version from the grader's index, no URLs, paths or options
that change where packages come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from grader.errors import BuildFailed
from grader.models import Snapshot
from grader.stages.intake import read_regular_file

MAX_REQUIREMENTS_BYTES = 256 * 1024


def read_requirements(snapshot: Snapshot) -> bytes:
    content = read_regular_file(snapshot.path / "requirements.txt", MAX_REQUIREMENTS_BYTES)
    if content is None:
        raise BuildFailed(
            "the repository has no requirements.txt at its root (or it is not a regular file); "
            "add one that lists your dependencies in pip format"
        )
    if len(content) > MAX_REQUIREMENTS_BYTES:
        raise BuildFailed(f"requirements.txt is larger than {MAX_REQUIREMENTS_BYTES} bytes")
    check_requirements(content)
    return content


_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
_ALLOWED_OPTIONS = ("--hash", "--require-hashes", "--prefer-binary", "--only-binary", "--no-binary", "--pre")
_SOURCE_CHANGING = re.compile(r"(^|\s)(-[ifce]\b|--(index-url|extra-index-url|find-links|trusted-host|no-index|editable|"
                              r"constraint|requirement|use-pep517|config-settings|global-option|install-option)\b)")


def _requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of requirements.txt with comments and blank lines left out, as pip reads them."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield number, line


def check_requirements(content: bytes) -> None:
    """Refuse lines that change where packages come from, or that pull in what the build cannot see."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed("requirements.txt is not UTF-8 text") from None
    for number, line in _requirement_lines(text):
        changing = _SOURCE_CHANGING.search(line)
        if line.startswith("-") or changing:
            option = changing.group(2) if changing else line.split()[0].split("=")[0]
            if option in _ALLOWED_OPTIONS and not changing:
                continue
            raise BuildFailed(
                f"requirements.txt line {number}: the option {option!r} is not allowed; packages come from "
                "the grader's package index only, so list plain requirements such as `flask==3.1.0`"
            )
        requirement = line.split(";", 1)[0]
        if (
            "://" in requirement or "/" in requirement or "\\" in requirement or " @ " in requirement
            or requirement.startswith((".", "~", "git+")) or requirement.rstrip().endswith(_ARCHIVES)
        ):
            raise BuildFailed(
                f"requirements.txt line {number}: {line[:80]!r} installs from a URL or a path; "
                "list packages by name and version only"
            )


def requirement_options(content: bytes) -> set[str]:
    """The options (allowed by `check_requirements`) present in requirements.txt, e.g. {"--pre", "--hash"}."""
    found: set[str] = set()
    for _, line in _requirement_lines(content.decode("utf-8")):
        for token in line.split():
            name = token.split("=", 1)[0]
            if name in _ALLOWED_OPTIONS:
                found.add(name)
    return found
