# HOSTILE: runs at install time. It must never run: the requirements policy refuses local paths.
import pathlib

pathlib.Path("{{SENTINEL_FILE}}").write_text("overwritten by setup.py\n")
pathlib.Path("{{SENTINEL_DIR}}/setup-py-ran").write_text("setup.py ran\n")
from setuptools import setup  # noqa: E402

setup(name="evilpkg", version="1.0")
