"""The requirements policy: plain requirements pass; options that change package sources are refused."""

from __future__ import annotations

import pytest

from grader.errors import BuildFailed
from grader.stages.requirements import check_requirements


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
        "git+https://evil.example/x.git", "/abs/path/pkg",
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
