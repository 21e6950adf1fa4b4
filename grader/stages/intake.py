"""Stage 1: fetch the submission with git into a clean snapshot on the host.

git is the only adapter here. Only the allowed transports are enabled (`protocol.allow=never` plus
an allow-list), hooks point at /dev/null, submodules and LFS are never fetched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

from grader.errors import InfraError, Rejected
from grader.models import Snapshot, SubmissionRequest
from grader.settings import Settings

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:]")
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+-]{1,200}$")


def normalize_source(source: str, settings: Settings) -> tuple[str, str]:
    """Return (url for git, transport) or raise Rejected with a reason a candidate understands."""
    source = source.strip()
    if not source or any(ch in source for ch in "\n\r\0") or source.startswith("-"):
        raise Rejected(f"{source!r} is not a repository URL; submit an https:// or ssh:// git URL")
    lowered = source.lower()
    if lowered.startswith("https://"):
        return source, "https"
    if lowered.startswith("ssh://") or _SCP_LIKE.match(source):
        authority = source[6:].split("/", 1)[0] if lowered.startswith("ssh://") else source
        if authority.rsplit("@", 1)[-1].startswith("-") or "-o" in authority.split("@", 1)[0]:
            raise Rejected(f"{source!r} is not a valid ssh repository URL")
        return source, "ssh"
    if lowered.startswith("file://") or "://" not in source and "::" not in source:
        if not settings.intake.allow_local_sources:
            raise Rejected("local repositories are not accepted here; submit an https:// or ssh:// git URL")
        path = Path(source[7:] if lowered.startswith("file://") else source).expanduser().resolve()
        if not path.is_dir():
            raise Rejected(f"no repository at {path}; check the path")
        return path.as_uri(), "file"
    scheme = source.split("::", 1)[0] if "::" in source.split("://", 1)[0] else source.split("://", 1)[0]
    raise Rejected(f"the {scheme!r} transport is not allowed; submit an https:// or ssh:// git URL")


def _git_config(transport: str) -> list[str]:
    allowed = {"https", "ssh", transport}
    config = [
        "protocol.allow=never",
        *(f"protocol.{name}.allow=always" for name in sorted(allowed)),
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "core.symlinks=true",
        "filter.lfs.smudge=",
        "filter.lfs.process=",
        "filter.lfs.required=false",
        "http.followRedirects=false",
        "transfer.fsckObjects=true",
    ]
    return [arg for item in config for arg in ("-c", item)]


def _git_env(ca_bundle: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_SSL_CAINFO": str(ca_bundle),
    }


def _run_git(args: list[str], cwd: Path, transport: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *_git_config(transport), *args],
            cwd=cwd, env=_git_env(settings.intake.ca_bundle), capture_output=True, text=True,
            timeout=settings.timeouts.clone_s, check=False,
        )
    except subprocess.TimeoutExpired:
        raise Rejected(f"fetching the repository took longer than {settings.timeouts.clone_s:.0f} s; is it too large?") from None
    except FileNotFoundError:
        raise InfraError("git is not installed on the grader's machine") from None


def _tree_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            files += 1
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total, files


def fetch_snapshot(request: SubmissionRequest, settings: Settings) -> Snapshot:
    """Shallow-fetch `request.source` at `request.ref` into a fresh directory without `.git`."""
    url, transport = normalize_source(request.source, settings)
    if request.ref is not None and not _REF.match(request.ref):
        raise Rejected(f"{request.ref!r} is not a valid branch, tag or commit name")
    dest = settings.paths.work_dir / request.id / "src"
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.mkdir(parents=True)
    init = _run_git(["init", "-q", "."], dest, transport, settings)
    if init.returncode != 0:
        raise InfraError(f"git init failed: {init.stderr.strip()}")
    ref = request.ref or "HEAD"
    fetch = _run_git(
        ["fetch", "-q", "--depth", "1", "--no-tags", "--no-recurse-submodules", url, ref],
        dest, transport, settings,
    )
    if fetch.returncode != 0:
        raise Rejected(_explain_fetch_failure(fetch.stderr, url, request.ref), log_tail=fetch.stderr[-2000:])
    _check_tree_size(_run_git(["ls-tree", "-r", "-l", "-z", "FETCH_HEAD"], dest, transport, settings).stdout, settings)
    checkout = _run_git(["checkout", "-q", "--detach", "FETCH_HEAD"], dest, transport, settings)
    if checkout.returncode != 0:
        raise Rejected("the fetched commit could not be checked out", log_tail=checkout.stderr[-2000:])
    commit = _run_git(["rev-parse", "HEAD"], dest, transport, settings).stdout.strip()
    shutil.rmtree(dest / ".git")
    _enforce_limits(*_tree_size(dest), settings)
    return Snapshot(
        submission_id=request.id, url=url, ref=request.ref, commit=commit, path=dest,
        requirements_sha256=_requirements_sha256(dest),
    )


def _check_tree_size(listing: str, settings: Settings) -> None:
    """Refuse an oversized tree before checkout writes it: a small, well-compressed clone can expand hugely."""
    size = files = 0
    for entry in listing.split("\0"):
        meta, _, _path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 4 and parts[1] == "blob":
            files += 1
            size += int(parts[3]) if parts[3].isdigit() else 0
    _enforce_limits(size, files, settings)


def _enforce_limits(size: int, files: int, settings: Settings) -> None:
    if size > settings.intake.max_repo_bytes:
        raise Rejected(f"the repository holds {size} bytes, more than the limit of {settings.intake.max_repo_bytes}")
    if files > settings.intake.max_repo_files:
        raise Rejected(f"the repository holds {files} files, more than the limit of {settings.intake.max_repo_files}")


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """Read a file of the snapshot without following a symbolic link; None when it is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit + 1)


def _requirements_sha256(root: Path) -> str | None:
    content = read_regular_file(root / "requirements.txt", 1024 * 1024)
    return hashlib.sha256(content).hexdigest() if content is not None else None


def _explain_fetch_failure(stderr: str, url: str, ref: str | None) -> str:
    text = stderr.lower()
    if ref and ("couldn't find remote ref" in text or "not our ref" in text or "no such remote ref" in text):
        return f"the ref {ref!r} does not exist in {url}; check the branch, tag or commit name"
    if "not found" in text or "does not appear to be a git repository" in text or "does not exist" in text:
        return f"no git repository at {url}; check the URL and that the repository is public"
    if "could not resolve host" in text or "unable to access" in text:
        return f"the repository at {url} could not be reached; check the URL"
    if "authentication" in text or "permission denied" in text or "could not read username" in text:
        return f"the repository at {url} needs credentials; make it readable without them"
    return f"the repository at {url} could not be fetched: {stderr.strip().splitlines()[-1] if stderr.strip() else 'git failed'}"
