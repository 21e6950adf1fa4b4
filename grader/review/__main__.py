"""`python -m grader.review <snapshot> [--limit-s S] [--memory-mb M]`: the bounded review, as JSON on stdout.

The process limits itself before it reads a byte of the snapshot: its address space (a file that eats memory
ends in MemoryError), its CPU time, the size of any file it writes (it writes none), no core dump; ruff
inherits the same limits. An alarm before the time limit (`soft_limit`) stops the work and prints what was found with
`error` set; the parent kills the whole process group at the limit itself, for what an alarm cannot stop
(a parser stuck in C). The defaults are the settings' defaults; the grader always passes its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import sys
import warnings
from pathlib import Path
from types import FrameType

from grader.review import memory_error, time_error
from grader.review.reviewer import Review, review_tree

MAX_WRITE_BYTES = 1024 * 1024
MAX_OPEN_FILES = 256


def soft_limit(limit_s: float) -> float:
    """When the alarm stops the work: a fifth of the limit, and at least a second, is left to print the answer, since
    a signal waits for the parse of a large file to end (half the limit at the least)."""
    return max(limit_s / 2, limit_s - max(limit_s / 5, 1.0))


class OutOfTime(BaseException):
    """The alarm (wall clock) or SIGXCPU (CPU time) went off; a BaseException, so no `except Exception` keeps working."""


def set_limits(memory_mb: int, limit_s: float) -> None:
    """Bound this process and its children; a limit the system refuses to lower stays as it was."""
    cpu = math.ceil(limit_s) + 1
    for which, value in (
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, MAX_WRITE_BYTES),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
    ):
        _soft, hard = resource.getrlimit(which)
        ceiling = value + 1 if which == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            value, ceiling = min(value, hard), min(ceiling, hard)
        try:
            resource.setrlimit(which, (value, ceiling))
        except (ValueError, OSError):
            continue


def _stop(signum: int, frame: FrameType | None) -> None:
    raise OutOfTime(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.review", description="Review a snapshot, bounded; print JSON.")
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--limit-s", type=float, default=10.0)
    parser.add_argument("--memory-mb", type=int, default=768)
    args = parser.parse_args(argv)
    review = Review(memory_mb=args.memory_mb)
    warnings.simplefilter("ignore")
    set_limits(args.memory_mb, args.limit_s)
    signal.signal(signal.SIGALRM, _stop)
    signal.signal(signal.SIGXCPU, _stop)
    signal.setitimer(signal.ITIMER_REAL, max(soft_limit(args.limit_s), 0.01))
    try:
        review_tree(args.snapshot, review)
    except OutOfTime:
        review.errors.append(time_error(args.limit_s))
    except MemoryError:
        review.errors.append(memory_error(args.memory_mb))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        answer = review.answer()
    except MemoryError:
        answer = {"findings": [], "metrics": {}, "error": memory_error(args.memory_mb), "duration_s": 0.0}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # the syntax trees need no tearing down: a large review ends sooner
