"""Database models. They must match migrations/ exactly: `flask db check` compares them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
FINAL = (DONE, FAILED)

# PostgreSQL's `integer`: an id outside it can name no row (and would make the query fail).
MAX_ID = 2**31 - 1
NOW = text("CURRENT_TIMESTAMP")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=NOW)

    def set_password(self, password: str) -> None:
        # Salted, slow hash (scrypt by default): equal passwords give different hashes.
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username}


class Import(db.Model):
    """One uploaded CSV and what the worker made of it. Status: pending -> running -> done | failed."""

    __tablename__ = "imports"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    filename: Mapped[str] = mapped_column(String(100), nullable=False)
    # Read only by the task: listing imports never loads the CSVs.
    csv_text: Mapped[str] = deferred(mapped_column(Text, nullable=False))
    status: Mapped[str] = mapped_column(Text, nullable=False, default=PENDING, server_default=text("'pending'"))
    total_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    invalid_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, default=list, server_default=text("'[]'"),
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=NOW)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    record_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))

    def to_dict(self) -> dict[str, Any]:
        done = self.status == DONE
        return {
            "id": self.id,
            "filename": self.filename,
            "status": self.status,
            "total_rows": self.total_rows if done else 0,
            "record_count": self.record_count if done else 0,
            "invalid_rows": self.invalid_rows if done else 0,
            "errors": list(self.errors or []) if done else [],
            "error": (self.error or "import failed") if self.status == FAILED else None,
        }


class Record(db.Model):
    """One valid CSV row of an import. The key (import_id, row_no) makes a second copy of a row impossible."""

    __tablename__ = "records"

    import_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True,
    )
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
