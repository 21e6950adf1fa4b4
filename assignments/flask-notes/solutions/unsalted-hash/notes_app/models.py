"""Database models. They must match migrations/ exactly: `flask db check` compares them."""

from __future__ import annotations

import hashlib
import hmac

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from .extensions import db


def count_words(text: str | None) -> int:
    """Number of whitespace-separated words."""
    return len((text or "").split())


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)

    @staticmethod
    def hash_password(password: str) -> str:
        return hashlib.sha256(password.encode("utf-8")).hexdigest()

    def set_password(self, password: str) -> None:
        # Never store the password itself, only its SHA-256 digest.
        self.password_hash = self.hash_password(password)

    def check_password(self, password: str) -> bool:
        # Constant-time comparison of the digests.
        return hmac.compare_digest(self.password_hash, self.hash_password(password))

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username}


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
    word_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    likes: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    @validates("body")
    def _keep_word_count(self, _key: str, body: str) -> str:
        # word_count always follows body, on create and on every update.
        self.word_count = count_words(body)
        return body

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "word_count": self.word_count,
            "likes": self.likes,
        }
