"""`grader images build` and `grader reap`: the local images, and what dead grading jobs left in the engine."""

from __future__ import annotations

import typer
from rich.console import Console

from grader.cli.helpers import infra_errors, load_settings
from grader.sandbox.docker import connect
from grader.sandbox.images import build_images
from grader.sandbox.reaper import reap as reap_jobs

app = typer.Typer(no_args_is_help=True, help="The local container images.")


@app.command("build")
def images_build(force: bool = typer.Option(False, help="Rebuild even when nothing changed.")) -> None:
    """Build the base image (mmdebstrap + docker import) and the harness image; skipped when up to date."""
    console = Console(stderr=True)
    settings = load_settings()
    with infra_errors():
        client = connect(settings)
        with console.status("building images (the first base build takes about half a minute)"):
            statuses = build_images(client, settings, force=force)
    for status in statuses:
        console.print(f"{status.name}: {'built' if status.built else 'up to date'} ({status.image_id[:19]})")


def reap() -> None:
    """Remove containers, volumes and images of jobs that no live grading process owns."""
    console = Console(stderr=True)
    settings = load_settings()
    with infra_errors():
        removed = reap_jobs(connect(settings))
    for submission_id, resources in removed.items():
        console.print(f"{submission_id}: removed {', '.join(resources)}")
    console.print(f"reaped {len(removed)} abandoned jobs")
