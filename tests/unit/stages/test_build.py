"""The install of a submission's requirements: uv's command, the build script, the layer key, uv's errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from grader.errors import InfraError
from grader.settings import Settings
from grader.stages.build import (
    REQUIREMENTS,
    UV,
    UV_CACHE,
    VENV,
    deps_key,
    install_command,
    install_script,
    uv_binary,
)
from grader.stages.install_failure import explain_install_failure

PLAIN = b"# pinned\nflask==3.1.3\ngunicorn==23.0.0  # server\n"


def _option(command: list[str], name: str) -> str:
    assert command.count(name) == 1, f"{name} should appear once in {command}"
    return command[command.index(name) + 1]


def test_install_command_installs_the_requirements_into_the_venv_with_bytecode():
    """uv pip install -r the mounted file, into the venv's Python, compiled, with a per-build cache."""
    command = install_command(PLAIN)
    assert command[:3] == [UV, "pip", "install"]
    assert command[-2:] == ["-r", REQUIREMENTS]
    assert _option(command, "--python") == f"{VENV}/bin/python"
    assert "--compile-bytecode" in command
    assert "--no-config" in command and "--no-python-downloads" in command
    cache = _option(command, "--cache-dir")
    assert cache == UV_CACHE and cache.startswith(f"{VENV}/"), "the cache must live in the build container only"
    assert not {"--require-hashes", "--prerelease", "--no-cache"} & set(command)
    assert not any(part.startswith(("--index", "--extra-index", "--find-links", "-i", "-f")) for part in command)


@pytest.mark.parametrize(
    "requirements",
    [
        b"flask==3.1.3 --hash=sha256:" + b"a" * 64 + b"\ngunicorn==23.0.0\n",
        b"flask==3.1.3 --hash=sha256:" + b"a" * 64 + b" --hash=sha256:" + b"b" * 64 + b"\n",
        b"--require-hashes\nflask==3.1.3\n",
    ],
)
def test_a_hash_turns_on_hash_checking_of_every_requirement_as_pip_does(requirements):
    """pip checks every requirement's hash once one line has a hash; uv does only with --require-hashes."""
    assert "--require-hashes" in install_command(requirements)


def test_pre_in_the_file_is_passed_to_uv_on_the_command_line():
    """uv ignores `--pre` inside a requirements file, so the grader passes it as `--prerelease allow`."""
    assert _option(install_command(b"--pre\nflask\n"), "--prerelease") == "allow"
    assert "--prerelease" not in install_command(b"flask  # --pre would be a comment here\n")


def test_binary_options_stay_in_the_file_for_uv_to_read():
    """--only-binary / --no-binary / --prefer-binary are read from the file by uv: nothing is added."""
    requirements = b"--only-binary :all:\n--no-binary=markupsafe\n--prefer-binary\nflask==3.1.3\n"
    assert install_command(requirements) == install_command(PLAIN)


def test_install_script_makes_the_venv_on_the_base_python_then_drops_the_cache():
    """The script stops at the first failure, uses the mounted CA bundle and leaves no cache in the layer."""
    settings = Settings(ca_bundle=Path("/etc/ssl/certs/ca-certificates.crt"), system_python="/usr/bin/python3")
    lines = install_script(PLAIN, settings).splitlines()
    assert lines[0] == "set -e"
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in lines[1]
    assert lines[2].startswith(f"{UV} venv ") and "--python /usr/bin/python3" in lines[2] and lines[2].endswith(f" {VENV}")
    assert lines[3].startswith(f"{UV} pip install ")
    assert lines[-1] == f"rm -rf {UV_CACHE}"


def _run_script(tmp_path: Path, fail_on: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the real script with a stub uv that logs its arguments and fails on `fail_on` (or never)."""
    stub = tmp_path / "uv"
    calls = tmp_path / "calls"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = "{fail_on}" ] && {{ echo "error: boom" >&2; exit 3; }}\n'
                    f'mkdir -p {tmp_path}/venv/.uv-cache\nexit 0\n')
    stub.chmod(0o755)
    script = install_script(PLAIN, Settings()).replace(UV, str(stub)).replace(VENV, str(tmp_path / "venv"))
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env={"PATH": os.defpath})
    return result, calls


def test_install_script_fails_with_uvs_exit_status_and_runs_nothing_after(tmp_path):
    """A failing `uv pip install` fails the build container with uv's status; the cache is not removed first."""
    result, calls = _run_script(tmp_path, fail_on="pip")
    assert result.returncode == 3
    assert "error: boom" in result.stderr
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["venv", "pip"]
    assert (tmp_path / "venv" / ".uv-cache").is_dir()


def test_install_script_succeeds_and_removes_the_cache(tmp_path):
    result, calls = _run_script(tmp_path, fail_on="never")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["venv", "pip"]
    assert not (tmp_path / "venv" / ".uv-cache").exists()


def test_deps_key_names_the_installer_so_pip_layers_are_not_reused():
    """The key of a layer differs from the key pip's layers had for the same base and requirements."""
    base = "sha256:" + "1" * 64
    pip_key = hashlib.sha256(base.encode() + b"\0" + PLAIN).hexdigest()[:32]
    assert deps_key(base, PLAIN) != pip_key
    assert deps_key(base, PLAIN) == deps_key(base, PLAIN)
    assert deps_key(base, PLAIN) != deps_key(base, PLAIN + b"\n")
    assert deps_key(base, PLAIN) != deps_key("sha256:" + "2" * 64, PLAIN)


def test_install_failure_keeps_uvs_message_causes_and_hint():
    tail = (
        "Using Python 3.11.2 environment at: /opt/venv\n"
        "  × No solution found when resolving dependencies:\n"
        "error: No solution found when resolving dependencies\n"
        "  cause: Because no-such-package-1a2b was not found in the package registry and you require "
        "no-such-package-1a2b==1.0, we can conclude that your requirements are unsatisfiable.\n"
        "\n"
        "hint: check the name\n"
    )
    assert explain_install_failure(tail) == (
        "`no-such-package-1a2b==1.0` cannot be installed: "
        "No solution found when resolving dependencies: Because no-such-package-1a2b was not found in the "
        "package registry and you require no-such-package-1a2b==1.0, we can conclude that your requirements are "
        "unsatisfiable. (hint: check the name)"
    )
    assert explain_install_failure("error: Failed to download `x==1`\n  cause: Hash mismatch for `x==1`\n\n    Expected:\n") == (
        "Failed to download `x==1`: Hash mismatch for `x==1`"
    )
    assert explain_install_failure("error: first\nerror: last\n") == "last"
    assert explain_install_failure("Killed\n") == ""
    assert len(explain_install_failure("error: " + "x" * 5000)) == 600


def test_uv_binary_is_the_installed_packages_executable():
    """`make setup` installs the uv package with the grader; its binary is what the build mounts."""
    path = uv_binary(Settings())
    assert path.is_file() and os.access(path, os.X_OK)
    assert subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout.startswith("uv ")


def test_a_missing_uv_binary_is_an_infra_error(tmp_path):
    with pytest.raises(InfraError, match="GRADER_UV_BINARY"):
        uv_binary(Settings(uv_binary=tmp_path / "nope"))
