"""The real service in a real browser: `grader serve` (Gunicorn, one worker, embedded Redis, Docker) driven by
headless Chromium: an administrator invites, a candidate submits and watches the stages, a reviewer reads."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from grader.sandbox.docker import connect
from grader.settings import PROJECT_ROOT, Settings
from tests.integration.conftest import leftovers
from tests.integration.test_queue import app_files

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
PASSWORD = "browser-test-pw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(self, folder: Path, assignments: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("GRADER_")}
        self.env.update(GRADER_DATA_DIR=str(folder / "var"), GRADER_REPORTS_DIR=str(folder / "reports"),
                        GRADER_ASSIGNMENTS_DIR=str(assignments), GRADER_SUBMIT_INTERVAL_S="0")
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "grader", *args], env=self.env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> None:
        log = open(self.folder / "serve.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader", "serve", "--port", str(self.port), "--workers", "1", "--web-workers", "1"],
            env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/login", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.3)

    def log(self) -> str:
        return (self.folder / "serve.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        redis_socket = self.folder / "var" / "redis" / "redis.sock"
        if redis_socket.exists():  # the embedded Redis `serve` started for this test
            subprocess.run(["redis-cli", "-s", str(redis_socket), "shutdown", "nosave"], capture_output=True, timeout=30)


@pytest.fixture
def service(short_tmp: Path, tiny_dir: Path) -> Iterator[Service]:
    running = Service(short_tmp, tiny_dir)
    running.cli("users", "create", "admin@example.com", "--role", "admin", "--password", PASSWORD)
    running.cli("users", "create", "rita@example.com", "--role", "reviewer", "--password", PASSWORD)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _login(page, base: str, email: str) -> None:
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")


def test_invite_submit_watch_and_review_in_a_browser(service, browser, git_repo):
    """Admin invites; candidate submits and sees `graded` without reloading; reviewer reads the report."""
    ARTIFACTS.mkdir(exist_ok=True)
    repo = git_repo(files=app_files(answer="41"))
    admin = browser.new_context().new_page()
    admin.goto(service.url + "/invitations")
    assert "/login" in admin.url
    _login(admin, service.url, "admin@example.com")
    admin.wait_for_url(re.compile(r".*/invitations$"))
    admin.fill("input[name=candidate]", "Cleo Candidate")
    admin.click("#create-invitation")
    link = admin.inner_text("#invitation-link").strip()
    admin.screenshot(path=str(ARTIFACTS / "web-1-invitation.png"), full_page=True)
    admin.goto(service.url + "/admin/assignments")
    shown = admin.inner_text("#assignment-tiny")
    assert "a reference solution with expected.toml is required" in shown and "never run" in shown

    candidate = browser.new_context().new_page()
    candidate.goto(link)
    assert "Serve hello at /" in candidate.inner_text("pre.brief")
    candidate.fill("input[name=repository]", str(repo))
    candidate.click("#submit")
    candidate.wait_for_url(re.compile(r".*/s/[^/]+$"))
    seen = set()
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        seen.add(candidate.inner_text("#progress"))
        if "graded" in seen:
            break
        time.sleep(0.2)
    candidate.screenshot(path=str(ARTIFACTS / "web-2-candidate-graded.png"), full_page=True)
    assert "graded" in seen, f"stages seen: {seen}\n{service.log()}"
    result = candidate.inner_text("#result")
    assert "Score: 5 / 10" in result and "Says hello" in result and "test_answer" not in result
    assert len(seen) >= 2, f"the page followed the stages live: {seen}"

    reviewer = browser.new_context().new_page()
    reviewer.goto(service.url + "/submissions?assignment=tiny")
    _login(reviewer, service.url, "rita@example.com")
    reviewer.wait_for_url(re.compile(r".*/submissions\?assignment=tiny$"))
    reviewer.click("#submissions a[href^='/submissions/s-']")
    submission_id = reviewer.url.rsplit("/", 1)[1]
    assert reviewer.inner_text("#score").startswith("5")
    frame = reviewer.frame_locator("#report")
    assert "test_answer" in frame.locator("body").inner_text()
    reviewer.screenshot(path=str(ARTIFACTS / "web-3-reviewer-report.png"), full_page=True)
    assert leftovers(connect(Settings()), [submission_id]) == [], "the grading left nothing in the engine"
