"""The real service in a real browser: `grader serve` (Gunicorn, one worker, embedded Redis, Docker) driven by
headless Chromium: an administrator invites, a candidate submits and watches the stages, a reviewer reads. And the
report of a flawed sample, standalone and on the reviewer's page, under their CSPs, saved as screenshots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from grader.sandbox.docker import connect
from grader.settings import PROJECT_ROOT, Settings
from grader.web.users import Role
from tests.integration.conftest import leftovers
from tests.integration.test_queue import app_files
from tests.loopback import free_port
from tests.unit.stages import report_samples as samples
from tests.web.conftest import PASSWORD as WEB_PASSWORD
from tests.web.test_candidate import _invite, _submit
from tests.web.test_report_pages import publish

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
PASSWORD = "browser-test-pw"



class Service:
    def __init__(self, folder: Path, assignments: Path) -> None:
        self.folder = folder
        self.port = free_port()
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


@pytest.mark.docker
@pytest.mark.slow
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
    assert reviewer.inner_text("#report-score").startswith("5")
    assert "test_answer" in (reviewer.locator("#report").text_content() or "")
    reviewer.screenshot(path=str(ARTIFACTS / "web-3-reviewer-report.png"), full_page=True)
    assert leftovers(connect(Settings()), [submission_id]) == [], "the grading left nothing in the engine"


@pytest.fixture
def live_app(app) -> Iterator[str]:
    """The web app of tests/web/conftest.py served over HTTP in a thread (no Redis, no Docker)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.mark.slow
def test_flawed_report_in_a_browser(live_app, browser, client, invitations, git_repo, store, enqueued, web_settings, users):
    """The standalone report (under its CSP) and the reviewer's page of a flawed sample: score, chart, verdict and the
    security box in the first screen, nothing blocked, the candidate's script inert; the candidate sees the rubric."""
    ARTIFACTS.mkdir(exist_ok=True)
    location = _submit(client, _invite(invitations), str(git_repo(files={"wsgi.py": "app = None\n"}))).headers["Location"]
    sid = enqueued[-1][0]
    publish(store, sid, web_settings.paths.reports_dir, samples.flawed())
    users.create_user("rita@example.com", WEB_PASSWORD, Role.reviewer)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type in ("error", "warning") and "favicon" not in message.location.get("url", "") else None)
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.goto(live_app + f"/submissions/{sid}")
    page.fill("input[name=email]", "rita@example.com")
    page.fill("input[name=password]", WEB_PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(rf".*/submissions/{sid}$"))
    assert page.inner_text("#report-score").startswith("48")
    assert page.locator("#security").bounding_box()["y"] < 900 * 1.3, "the security box is near the top"
    page.screenshot(path=str(ARTIFACTS / "web-4-reviewer-report-14.png"), full_page=True)

    page.goto(live_app + f"/submissions/{sid}/report.html")
    box = page.locator("svg.chart").bounding_box()
    assert box and box["width"] > 300 and page.locator("#verdict").bounding_box()["y"] < 400
    page.locator("#category-auth > summary").click()
    for summary in page.locator("#category-auth details > summary").all():
        summary.click()
    assert "alert(" in page.inner_text("#category-auth"), "the candidate's script shows as text"
    page.screenshot(path=str(ARTIFACTS / "report-14-standalone.png"), full_page=True)
    assert problems == [], problems

    candidate = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    candidate.goto(live_app + location)
    candidate.wait_for_selector("#result h2")
    shown = candidate.inner_text("#result")
    assert "Passwords are never stored in plain text" in shown and "test_auth.py" not in shown and "alice" not in shown
    candidate.screenshot(path=str(ARTIFACTS / "web-5-candidate-report-14.png"), full_page=True)
