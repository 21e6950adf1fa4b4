"""Stage 3: the first lane's pod, booted: the relay, then the app set up (migrations) and serving."""

from __future__ import annotations

from grader.assignments.model import Assignment
from grader.models import Pod, SubmissionImage
from grader.sandbox import Sandbox
from grader.sandbox.pod import start_pod
from grader.settings import Settings


def boot_app(image: SubmissionImage, assignment: Assignment, settings: Settings, sandbox: Sandbox) -> Pod:
    """The first lane's pod, once its app answers HTTP; BootFailed with the app's output if it never does.
    Later lanes and spares are booted by grader/stages/lanes.py."""
    return start_pod(image, assignment, settings, sandbox)
