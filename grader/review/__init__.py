"""The static code review of a candidate's repository, run as a bounded child process of the grader.

The candidate's code is untrusted: it is read and parsed (`ast`, ruff, radon), never imported or run. All of
it happens in `python -m grader.review <snapshot-dir>` (`__main__.py`), which limits its own memory, CPU time
and file writes before reading anything and prints a `CodeReview` as JSON; `grader/stages/review.py` starts
it, kills its process group at the time limit, and reads the answer. A deep expression that overflows a
parser or a file that eats the memory ends that process, never the grader.

`reviewer.py` runs the steps; `tree.py` walks the snapshot (no links, bounded); `module.py` is one parsed
module; our own rules are `configuration.py`, `injection.py` and `passwords.py` (one module at a time; the
passwords stored as given need every model, so that half runs with the whole app) and `checks.py` (the whole
app, with `flaskapp.py`); `texts.py` reads templates and the files that say how the app is run;
`linters.py` runs ruff and radon; `findings.py` shapes, orders and caps what was found. None of them imports
pydantic: the child stays quick to start, and the parent validates its answer.
"""


def time_error(limit_s: float) -> str:
    """The `error` of a review stopped by its time limit, whichever side stopped it."""
    return f"the review stopped at its time limit of {limit_s:g} s; the findings below are incomplete"


def memory_error(memory_mb: int) -> str:
    return f"the review ran out of its memory limit of {memory_mb} MB; the findings below are incomplete"
