"""Reasons distilled from uv's output: the one line that says why installing the dependencies failed.

uv's output is read as text, never trusted: `explain_install_failure` takes the build container's log and returns
one line for the build failure's reason, or "" when it has no uv error (the caller then points at the log, which
stays in the report).
"""

from __future__ import annotations

import re

from grader.stages.diagnose import APP_ROOT

_MAX_TEXT = 240  # of the build output's line quoted as the cause
_REQUIRED = re.compile(r"you require (?P<requirement>[A-Za-z0-9][\w.\-\[\],]*\s*(?:===|==|~=|!=|>=|<=|>|<)\s*[\w.*+!]+)")
_BUILD_CAUSES = (  # (score, pattern) over the build backend's output: the most telling line wins, the first of them
    (3, re.compile(r"fatal error:|error: command '[^']*' failed: No such file or directory")),
    (2, re.compile(r"^(?:[\w.]*(?:Error|Exception)|error|Error|ERROR)\b:?\s+\S")),
    (1, re.compile(r"error: command .* failed with exit code|\bnot found\b|\bnot installed\b")),
)
_NOT_CAUSES = re.compile(r"subprocess-exited-with-error|^error: metadata-generation-failed|Deprecat|Warning")


def explain_install_failure(log_tail: str) -> str:
    """uv's failure to install the dependencies, for the reason after "uv exited with N: "; "" when the log has
    no uv error. A dependency that does not build (no wheel for the base Python, and its build from source
    failed) is named with its version and the one line of its build output that says why; a resolution that
    fails names the requirement it fails on; anything else is uv's own error, its causes and its hint."""
    lines = log_tail.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if not errors:
        return ""
    start = errors[-1]
    text = _uv_error(lines[start:])
    built = re.search(r"Failed to (?:download and )?build `(?P<package>[^`]+)`", lines[start])
    if built:
        python = re.search(r"Using Python (?P<version>[\w.+]+) environment", log_tail)
        on = f" for Python {python['version']}" if python else " for the base Python"
        why = _build_cause(lines[start + 1:])
        return f"`{built['package']}` has no wheel{on} and building it from source failed: " + (why or text)
    if "No solution found" in lines[start]:
        required = _REQUIRED.search(text)
        if required:
            return f"`{required['requirement']}` cannot be installed: {text}"
    return text


def _uv_error(lines: list[str], limit: int = 600) -> str:
    """uv's `error:` line, its indented causes joined with ": ", and a `hint:` right after them."""
    block = [lines[0].removeprefix("error:").strip()]
    following = lines[1:]
    while following and following[0].startswith((" ", "\t")) and following[0].strip():
        block.append(following.pop(0).strip().removeprefix("cause:").strip())
    text = ": ".join(block)
    rest = [line for line in following if line.strip()]
    if rest and rest[0].startswith("hint:"):
        text += f" ({rest[0].strip()})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _build_cause(lines: list[str]) -> str:
    """The line of a failed build's output that says why, "" if none reads as a cause."""
    best, chosen = 0, ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("hint:"):
            break
        if not line or _NOT_CAUSES.search(line) or line.startswith(("cause:", "[std")):
            continue
        score = next((score for score, pattern in _BUILD_CAUSES if pattern.search(line)), 0)
        if score > best:
            best, chosen = score, line
    return _short(chosen)


def _short(text: str) -> str:
    text = " ".join(text.replace(APP_ROOT, "").split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
