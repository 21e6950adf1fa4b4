"""The `grader` command: one typer app, one module per command group.

    grade.py        grade                      one submission graded in-process, its report written
    images.py       images build, reap         the local images; what dead grading jobs left in the engine
    queue.py        submit, status, worker, regrade, delete
    cohort.py       cohort                     an assignment's cohort: distribution, hardest tests, similar pairs
    serve.py        serve                      the whole service
    assignments.py  assignments validate, check
    users.py        users create
    helpers.py      the exit codes, the one error printer `fail`, settings from options

Commands are registered here, in the order `grader --help` lists them.
"""

from __future__ import annotations

import typer

from grader.cli import assignments, cohort, grade, images, queue, serve, users

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Grade Flask take-home submissions.")
for command in (grade.grade, images.reap, queue.submit, queue.status, queue.worker, queue.regrade, queue.delete,
                cohort.cohort, serve.serve):
    app.command()(command)
app.add_typer(images.app, name="images")
app.add_typer(assignments.app, name="assignments")
app.add_typer(users.app, name="users")


def main() -> None:
    app()
