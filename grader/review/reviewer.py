"""The review's steps in order of value: each module parsed and its own rules run, then the rules over the whole
app (ruff working beside them), ruff's findings, radon's figures.

Each step adds to one `Review` as it ends.

When the time or the memory runs out mid-way (`__main__.py` turns both into an exception), what the steps
before found is still printed: the cheap, specific rules come first so an interrupted review keeps them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.review import checks, configuration, injection, linters, memory_error, passwords, texts
from grader.review.findings import CORRECTNESS, Finding, finalize, finding
from grader.review.module import Module
from grader.review.tree import Tree, walk_tree

MAX_SKIPPED_NAMED = 10


@dataclass
class Review:
    """What the review has found so far: the answer printed, complete or not."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    memory_mb: int = 768

    def answer(self) -> dict[str, Any]:
        """The `CodeReview` as JSON-ready data."""
        kept, left_out = finalize(self.findings)
        metrics = dict(self.metrics)
        metrics["findings"] = len(kept) + left_out
        metrics["findings_left_out"] = left_out
        metrics["skipped_files"] = len(self.skipped)
        if self.skipped:
            named = [f"{path} ({reason})" for path, reason in self.skipped[:MAX_SKIPPED_NAMED]]
            more = len(self.skipped) - len(named)
            metrics["skipped"] = "; ".join(named) + (f"; and {more} more" if more else "")
        return {
            "findings": kept, "metrics": metrics, "error": "; ".join(dict.fromkeys(self.errors)),
            "duration_s": round(time.monotonic() - self.started, 3),
        }


def review_tree(root: Path, review: Review) -> None:
    """Review the snapshot at `root` into `review`: never imports or runs any of it."""
    tree = walk_tree(root)
    review.skipped.extend(tree.skipped)
    review.metrics["templates"] = len(tree.templates)
    modules = _parse(tree, review)
    review.metrics["migration_files"] = sum(1 for m in modules if m.source.kind == "migration")
    reviewed = [m for m in modules if m.source.kind != "migration"]
    review.metrics["python_files"] = len(reviewed)
    ruff = linters.Ruff(root, reviewed)
    try:
        migrations = [m for m in modules if m.source.kind == "migration"]
        project = _project(tree, [m for m in modules if m.source.kind == "app"], migrations)
        _project_rules(project, review)
        ruff_found, problem = ruff.findings()
        review.findings.extend(ruff_found)
        if problem:
            review.errors.append(problem)
        review.metrics.update(linters.measure(reviewed))
    except BaseException:
        review.findings.extend(ruff.finished())
        raise
    finally:
        ruff.close()


def _parse(tree: Tree, review: Review) -> list[Module]:
    modules: list[Module] = []
    for source in tree.python:
        try:
            parsed = Module.parse(source)
        except MemoryError:
            review.skipped.append((source.path, "too large to parse within the memory limit"))
            review.errors.append(memory_error(review.memory_mb))
            continue
        if isinstance(parsed, str):
            review.findings.append(finding(
                "grader:syntax-error", CORRECTNESS, source.path, _line_of(parsed), source.text.splitlines(),
                f"This file does not parse ({parsed}): Python cannot import it, and nothing in it was reviewed.",
            ))
        else:
            modules.append(parsed)
            review.findings += _module_rules(parsed)
    return modules


def _line_of(reason: str) -> int:
    head = reason.split(":", 1)[0]
    return int(head.removeprefix("line ")) if head.startswith("line ") and head[5:].isdigit() else 0


def _project(tree: Tree, modules: list[Module], migrations: list[Module]) -> checks.Project:
    templates = [texts.Template(t.path, t.text) for t in tree.templates]
    for module in modules:
        templates += injection.inline_templates(module)
    commands = [command for run_file in tree.run_files for command in texts.commands(run_file)]
    if tree.readme is not None:
        commands += texts.commands(tree.readme, readme=True)
    named = [f.text for f in [*tree.run_files, *tree.packaging]] + ([tree.readme.text] if tree.readme else [])
    named += [m.source.text for m in modules]
    return checks.Project(
        modules=modules, migrations=migrations, templates=templates, commands=commands,
        debug_settings=[(f.path, line) for f in tree.run_files for line in texts.debug_settings(f)],
        production_server=any(texts.PRODUCTION_SERVERS.search(text) for text in named),
        text_lines={f.path: f.text.splitlines() for f in [*tree.run_files, *([tree.readme] if tree.readme else [])]},
    )


def _module_rules(module: Module) -> list[Finding]:
    """The rules that read one module, run as soon as it is parsed: tests get none, migrations only the secret."""
    if module.source.kind == "test":
        return []
    found = configuration.hard_coded_secrets(module)
    if module.source.kind == "app":
        found += configuration.debug_settings(module) + configuration.csrf_switched_off(module)
        found += injection.sql_from_strings(module) + injection.unsafe_markup(module)
        found += passwords.weak_hashes(module)
    return found


def _project_rules(project: checks.Project, review: Review) -> None:
    """The rules that need the whole app: passwords kept as given (a view's `user.password = ...` is one only when
    a model maps `password` as a column), the factory, the routes, how it is run, its forms and templates."""
    found = review.findings
    found += passwords.plain_passwords(project.modules)
    found += checks.app_factory(project)
    layout, routes, blueprints = checks.route_layout(project)
    found += layout
    review.metrics.update(routes=routes, blueprints=blueprints)
    found += checks.development_server(project)
    found += checks.csrf_forms(project)
    for template in project.templates:
        found += texts.template_findings(template)
