"""The program an app container runs: the app's libraries imported once, each command forked from them.

Importing Flask, SQLAlchemy and Alembic costs about half a CPU-second, and a grade runs a dozen Flask CLI
commands and boots several Gunicorn workers, each of which imported them again. This program imports the
libraries the assignment names (`run.preload`), never the candidate's own modules, then

- `launch SPEC`: runs the setup commands, each in a fork, then becomes the serve command (Gunicorn's
  master, whose workers fork from it and import only the app). Without a serve command it becomes the
  fork server (an idle app container, where the hidden tests drive the Flask CLI). A serving container
  gets no fork server: its processes are the app's alone, as they would be without the grader.
- `client SOCKET ARGV...`: run through `docker exec` with the system Python (`-I -S`), hands its argv, environment
  and standard streams to the fork server and exits with the command's status. When no fork server
  answers, it execs the command itself: the server only ever makes a command faster.

The grader runs one on its own side too, with pytest and the harness imported, and forks each lane's
hidden-suite process from it (see grader/stages/suite.py); it ends when the process that started it does.

A command that is a console script of the environment (`flask`, `gunicorn`) or `python -m MODULE` with
this Python is run in-process, as its wrapper script or `-m` would run it; anything else is exec'd. Gunicorn's
`--config /dev/null` (how an assignment keeps a submission's gunicorn.conf.py out) is given to it as an empty
configuration module, so the app's log does not open with Gunicorn's warning about the file's extension.
Standard library only. The submission image carries this file at `IMAGE_PATH` (grader/stages/build.py copies
it in, owned by root, under a read-only root), so a container's processes read as
`python /usr/local/lib/grader/forkserver.py launch {...}` and then as the app's own commands, not as this
program's whole text in argv.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import socket
import sys
import traceback
from typing import Any

SOCKET_PATH = "/tmp/grader-forkserver.sock"
IMAGE_PATH = "/usr/local/lib/grader/forkserver.py"
_STARTED = b"started\n"
_MAX_REQUEST = 1024 * 1024
EMPTY_CONFIG = "grader_no_gunicorn_config"  # the module `--config /dev/null` becomes (see without_config_file)


def preload(modules: list[str]) -> None:
    """Import each module that imports cleanly; one that fails leaves nothing of itself behind."""
    for name in modules:
        before = set(sys.modules)
        try:
            __import__(name)
        except BaseException:
            for added in set(sys.modules) - before:
                sys.modules.pop(added, None)


def console_scripts() -> dict[str, str]:
    """Console scripts of the running environment that PATH resolves to it: name -> `module:attr`."""
    from importlib.metadata import entry_points
    from shutil import which

    bin_dir = os.path.dirname(sys.executable)
    scripts = {}
    for entry in entry_points(group="console_scripts"):
        if which(entry.name) == os.path.join(bin_dir, entry.name):
            scripts[entry.name] = entry.value
    return scripts


def needs_shell(command: str) -> bool:
    """Whether a command string uses any shell syntax (anything but plain words)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return True
    plain = " ".join(shlex.quote(w) for w in words) == " ".join(command.split())
    return not (words and plain and "=" not in words[0])


def _is_this_python(program: str) -> bool:
    from shutil import which

    return program == sys.executable or ("/" not in program and which(program) == sys.executable)


def run_command(argv: list[str], scripts: dict[str, str]) -> None:
    """Become the command, never returning: a console script or `python -m MODULE` of this environment
    in-process, anything else exec'd."""
    if len(argv) >= 3 and argv[1] == "-m" and _is_this_python(argv[0]):
        import runpy

        sys.argv = ["-m", *argv[3:]]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        sys.exit(0)
    target = scripts.get(argv[0]) if argv else None
    if target is None:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            why = "command not found" if isinstance(exc, FileNotFoundError) else str(exc.strerror).lower()
            print(f"{argv[0]}: {why}", file=sys.stderr, flush=True)
            sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
    if argv[0] == "gunicorn":
        argv = without_config_file(argv)
    bin_dir = os.path.dirname(sys.executable)
    sys.argv = [os.path.join(bin_dir, argv[0]), *argv[1:]]
    sys.path[0] = bin_dir
    module, _, attribute = target.partition(":")
    function: Any = __import__(module, fromlist=["_"])
    for part in attribute.strip().split("."):
        function = getattr(function, part)
    sys.exit(function())


def without_config_file(argv: list[str]) -> list[str]:
    """Gunicorn's argv with `--config /dev/null` (no configuration: not the candidate's ./gunicorn.conf.py) as an
    empty configuration module instead, registered here: the same settings, without the warning Gunicorn
    prints into the app's log about a configuration file without a `.py` extension."""
    words, changed = list(argv), False
    for index, word in enumerate(words):
        if word in ("-c", "--config") and words[index + 1 : index + 2] == ["/dev/null"]:
            words[index + 1], changed = f"python:{EMPTY_CONFIG}", True
        elif word in ("-c/dev/null", "--config=/dev/null"):
            words[index], changed = f"--config=python:{EMPTY_CONFIG}", True
    if changed:
        import types

        sys.modules.setdefault(EMPTY_CONFIG, types.ModuleType(EMPTY_CONFIG, "No Gunicorn settings at all."))
    return words


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _finish_child(argv: list[str], scripts: dict[str, str]) -> None:
    """The forked command's whole life: its exit code as the interpreter would give it; never returns."""
    code = 1
    try:
        run_command(argv, scripts)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _command_words(command: str) -> list[str]:
    return ["/bin/sh", "-c", command] if needs_shell(command) else shlex.split(command)


def run_setup(commands: list[str], scripts: dict[str, str]) -> None:
    """Each setup command in a fork, in order; a failure is reported and the next one still runs."""
    for command in commands:
        pid = os.fork()
        if pid == 0:
            _finish_child(_command_words(command), scripts)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"[setup] {shlex.quote(command)} failed", file=sys.stderr, flush=True)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(connection, 65536, 3)
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        if len(data) > _MAX_REQUEST:
            raise ValueError("request too large")
        chunk = connection.recv(65536)
        if not chunk:
            raise ValueError("request cut short")
        data += chunk
    return json.loads(data[4 : 4 + int.from_bytes(data[:4], "big")]), fds


def _handle(connection: socket.socket, scripts: dict[str, str]) -> None:
    """One command, in a process of its own: fork it, then wait for its end or for the client to go away."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request, fds = _receive(connection)
    pid = os.fork()
    if pid == 0:
        connection.close()
        os.setsid()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _finish_child(request["argv"], scripts)
    for fd in fds:
        os.close(fd)
    connection.sendall(_STARTED)
    status = _wait_unless_gone(pid, connection)
    _kill_group(pid)
    if status is None:
        os.waitpid(pid, 0)
        return
    code = os.waitstatus_to_exitcode(status)
    connection.sendall(f"{128 - code if code < 0 else code}\n".encode())


def _wait_unless_gone(pid: int, connection: socket.socket) -> int | None:
    """The command's wait status, or None as soon as the client hangs up (it was killed at its time limit)."""
    try:
        process: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):  # kernels before 5.3: poll instead
        process = None
    while True:
        watched = [connection.fileno()] + ([process] if process is not None else [])
        ready, _, _ = select.select(watched, [], [], None if process is not None else 0.02)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if connection.fileno() in ready:
            return None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def serve_forever(listener: socket.socket, scripts: dict[str, str], parent: int | None = None) -> None:
    """Accept commands until killed (or, given a `parent`, until that process is gone); each connection is
    handled in a fork, reaped by the kernel."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        if parent is not None:
            ready, _, _ = select.select([listener], [], [], 1.0)
            if os.getppid() != parent:
                try:
                    os.unlink(listener.getsockname())
                finally:
                    os._exit(0)
            if not ready:
                continue
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            try:
                _handle(connection, scripts)
            finally:
                os._exit(0)
        connection.close()


def launch(spec: dict) -> None:
    """The container's main process: preload, set up, then serve; or listen, preload and answer commands.

    The fork server listens before it preloads, so a command sent meanwhile waits in the backlog."""
    sys.path[0] = os.path.dirname(sys.executable)
    serve: str | None = spec.get("serve")
    if not serve:
        path = spec.get("socket", SOCKET_PATH)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(16)
    preload(spec.get("preload", []))
    scripts = console_scripts()
    sys.stdout.flush()
    sys.stderr.flush()
    if not serve:
        serve_forever(listener, scripts, spec.get("parent"))
        return
    run_setup(spec.get("setup", []), scripts)
    words = _command_words(serve)
    if words[0] == "/bin/sh":
        words[2] = "exec " + words[2]
    run_command(words, scripts)


def client(path: str, argv: list[str]) -> None:
    """Run ARGV through the fork server at `path`, with this process's streams, environment and directory."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        payload = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(connection, [len(payload).to_bytes(4, "big") + payload], [0, 1, 2])
        answer = b""
        while b"\n" not in answer:
            chunk = connection.recv(64)
            if not chunk:
                break
            answer += chunk
    except OSError:
        answer = b""
    if not answer.startswith(_STARTED):
        connection.close()
        os.execvp(argv[0], argv)
    answer = answer[len(_STARTED) :]
    while b"\n" not in answer:
        chunk = connection.recv(64)
        if not chunk:
            print("the grader's fork server ended before the command did", file=sys.stderr, flush=True)
            sys.exit(1)
        answer += chunk
    sys.exit(int(answer))


def host_path() -> str:
    """This file on the grader's host, for the grader's own fork server and for copying into images."""
    return os.path.abspath(__file__)


if __name__ == "__main__":
    if not sys.flags.isolated:
        sys.path[0] = os.getcwd()  # as `python -c` would have it: the app's folder, not this file's
    if sys.argv[1:2] == ["launch"]:
        launch(json.loads(sys.argv[2]))
    elif sys.argv[1:2] == ["client"]:
        client(sys.argv[2], sys.argv[3:])
    else:
        print("usage: forkserver launch SPEC | client SOCKET ARGV...", file=sys.stderr)
        sys.exit(2)
