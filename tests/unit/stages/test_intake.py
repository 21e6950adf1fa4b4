"""Intake: which sources are accepted, and what a real clone of a local repository yields."""

from __future__ import annotations

import pytest

from grader.errors import Rejected
from grader.models import SubmissionRequest
from grader.stages.intake import fetch_snapshot, normalize_source


@pytest.mark.parametrize(
    "source",
    ["ext::sh -c touch% /tmp/pwned", "fd::17", "http://example.com/repo.git", "ftp://x/y", "-uhelp", ""],
)
def test_disallowed_transports_are_rejected(settings, source):
    """ext::, fd::, plain http and option-looking sources are refused before git runs."""
    with pytest.raises(Rejected):
        normalize_source(source, settings)


@pytest.mark.parametrize(
    ("source", "transport"),
    [("https://github.com/a/b.git", "https"), ("ssh://git@host/a/b.git", "ssh"), ("git@github.com:a/b.git", "ssh")],
)
def test_remote_transports_are_accepted(settings, source, transport):
    """https, ssh and scp-like URLs are accepted as they are."""
    assert normalize_source(source, settings) == (source, transport)


def test_local_paths_follow_the_setting(settings, git_repo):
    """A local path becomes a file:// URL when allowed and is rejected when not."""
    repo = git_repo(files={"a.txt": "a"})
    assert normalize_source(str(repo), settings) == (repo.resolve().as_uri(), "file")
    closed = settings.replace(allow_local_sources=False)
    with pytest.raises(Rejected, match="local repositories are not accepted"):
        normalize_source(str(repo), closed)


def test_clone_without_ref_takes_default_branch_and_drops_git(settings, git_repo, git):
    """A shallow clone has the files, the commit id, and no .git directory."""
    repo = git_repo(files={"requirements.txt": "flask\n", "app.py": "x = 1\n"})
    snapshot = fetch_snapshot(SubmissionRequest(id="t1", source=str(repo), assignment="a"), settings)
    assert snapshot.commit == git(repo, "rev-parse", "HEAD")
    assert (snapshot.path / "app.py").read_text() == "x = 1\n"
    assert not (snapshot.path / ".git").exists()
    assert snapshot.requirements_sha256 is not None


def test_clone_at_branch_tag_and_commit(settings, git_repo, git):
    """--ref accepts a branch, a tag and a full commit id."""
    repo = git_repo(files={"v.txt": "one"})
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    (repo / "v.txt").write_text("two")
    git(repo, "commit", "-qam", "two")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "v.txt").write_text("three")
    git(repo, "commit", "-qam", "three")
    for ref, expected in [("v1", "one"), ("main", "two"), ("feature", "three"), (first, "one")]:
        snapshot = fetch_snapshot(SubmissionRequest(id=f"r-{expected}", source=str(repo), ref=ref, assignment="a"), settings)
        assert (snapshot.path / "v.txt").read_text() == expected, ref


def test_missing_ref_is_rejected_with_reason(settings, git_repo):
    """A ref that does not exist is rejected with a reason naming it."""
    repo = git_repo(files={"a.txt": "a"})
    with pytest.raises(Rejected, match="'nope' does not exist"):
        fetch_snapshot(SubmissionRequest(id="t2", source=str(repo), ref="nope", assignment="a"), settings)


def test_missing_repository_is_rejected(settings, short_tmp):
    """A path without a repository is rejected, not an infrastructure error."""
    (short_tmp / "empty").mkdir()
    with pytest.raises(Rejected):
        fetch_snapshot(SubmissionRequest(id="t3", source=str(short_tmp / "empty"), assignment="a"), settings)
    with pytest.raises(Rejected, match="no repository"):
        fetch_snapshot(SubmissionRequest(id="t4", source=str(short_tmp / "absent"), assignment="a"), settings)


def test_symlinked_requirements_is_not_read(settings, git_repo, git, short_tmp):
    """A requirements.txt that links to a host file is neither followed nor hashed."""
    secret = short_tmp / "host-secret"
    secret.write_text("secret")
    repo = git_repo(files={"app.py": ""})
    (repo / "requirements.txt").symlink_to(secret)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    snapshot = fetch_snapshot(SubmissionRequest(id="t5", source=str(repo), assignment="a"), settings)
    assert (snapshot.path / "requirements.txt").is_symlink()
    assert snapshot.requirements_sha256 is None


def test_repository_over_size_cap_is_rejected(settings, git_repo):
    """A repository larger than max_repo_bytes is rejected with the limit named."""
    repo = git_repo(files={"big.txt": "x" * 20000})
    small = settings.replace(max_repo_bytes=10000)
    with pytest.raises(Rejected, match="more than the limit"):
        fetch_snapshot(SubmissionRequest(id="t6", source=str(repo), assignment="a"), small)
