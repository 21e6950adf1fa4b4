"""Alembic's environment for the grader's own database; `grader.db.engine.migrate` hands it a connection."""

from __future__ import annotations

from alembic import context

from grader.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the grader's migrations through grader.db.engine.migrate(), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
