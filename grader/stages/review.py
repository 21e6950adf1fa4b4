"""The static code review of the snapshot, on the host, in a child process that is killed at the time limit.

The candidate's code is parsed there (`python -m grader.review`, see `grader/review/`), never imported or run;
the child limits its own memory and CPU and prints a `CodeReview` as JSON. Here it gets no environment of
ours (no secret, no database URL), its own process group (so ruff dies with it) and a working directory of
ours, never the snapshot's, so no module of the candidate's can shadow one of ours. Whatever the tree does
to the child (a timeout, a memory blow-up, a crash), the answer is a `CodeReview` whose `error` says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import ValidationError

import grader
from grader.models import CodeReview
from grader.review import memory_error, time_error
from grader.settings import Settings

_OUR_ROOT = Path(grader.__file__).resolve().parent.parent
_CHILD_ENVIRONMENT = {"LC_ALL": "C.UTF-8"}
_MAX_ANSWER_BYTES = 4 * 1024 * 1024
_REAP_S = 5.0


def review_code(source: Path, settings: Settings) -> CodeReview:
    """Review the snapshot at `source` within `settings.timeouts.review_s`; never raises for the tree's sake."""
    limit = settings.timeouts.review_s
    memory = settings.sandbox.review_memory_mb
    started = time.monotonic()
    command = [
        sys.executable, "-E", "-s", "-m", "grader.review",
        "--limit-s", f"{limit:g}", "--memory-mb", str(memory), "--", str(Path(source).resolve()),
    ]
    try:
        process = subprocess.Popen(
            command, cwd=_OUR_ROOT, env=_CHILD_ENVIRONMENT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        return CodeReview(error=f"the review could not start ({exc}); nothing was reviewed")
    out, err, timed_out = b"", b"", False
    try:
        out, err = process.communicate(timeout=max(limit - (time.monotonic() - started), 0.01))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)
    if timed_out:
        return CodeReview(error=time_error(limit), duration_s=_since(started))
    return _answer(process.returncode, out, err, limit, memory, _since(started))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the child and everything it started (ruff), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=_REAP_S)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        process.kill()


def _answer(returncode: int, out: bytes, err: bytes, limit: float, memory: int, duration: float) -> CodeReview:
    stderr = err.decode("utf-8", "replace").strip()
    if returncode == 0 and len(out) <= _MAX_ANSWER_BYTES:
        try:
            review = CodeReview.model_validate_json(out)
        except ValidationError as exc:
            return CodeReview(error=f"the review's answer could not be read (a grader bug): {_first_line(str(exc))}",
                              duration_s=duration)
        return review.model_copy(update={"duration_s": duration})
    if "MemoryError" in stderr or "memory allocation" in stderr:
        return CodeReview(error=memory_error(memory), duration_s=duration)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return CodeReview(error=time_error(limit), duration_s=duration)
    how = f"exit {returncode}"
    if returncode < 0:
        how = f"signal {signal.Signals(-returncode).name}" if -returncode in signal.valid_signals() else f"signal {-returncode}"
    last = _first_line(stderr.splitlines()[-1]) if stderr else "no output"
    return CodeReview(error=f"the review stopped unexpectedly ({how}: {last}); its findings are missing", duration_s=duration)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
