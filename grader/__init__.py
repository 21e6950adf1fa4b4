"""Grades Flask take-home submissions in a Docker sandbox."""

__version__ = "0.1.0"
