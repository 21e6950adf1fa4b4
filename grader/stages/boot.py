"""Stage 3: the first lane's pod, booted: the relay, then the app set up (migrations) and serving."""

from __future__ import annotations

from pathlib import Path

from grader.assignments.model import Assignment
from grader.errors import BootFailed
from grader.models import Pod, SubmissionImage
from grader.sandbox import Sandbox
from grader.sandbox.pod import start_pod
from grader.settings import Settings
from grader.stages.diagnose import entry_point, refine_boot_failure


def boot_app(
    image: SubmissionImage, assignment: Assignment, settings: Settings, sandbox: Sandbox, *, source: Path | None = None,
) -> Pod:
    """The first lane's pod, once its app answers HTTP; BootFailed with the app's output if it never does, its
    reason naming the cause when the output shows one. `source` is the snapshot's folder, where the file that
    imports a module that is not installed is looked up when no traceback names it.
    Later lanes and spares are booted by grader/stages/lanes.py."""
    try:
        return start_pod(image, assignment, settings, sandbox)
    except BootFailed as exc:
        entry = entry_point(assignment.serve_of(assignment.lanes()[0][0]))
        raise refine_boot_failure(exc, entry=entry, source=source) from None
