"""An operator and a viewer in a real browser (Playwright driving Debian's Chromium) against
gunicorn and a real qcluster. Screenshots go to the test's output folder, or to the folder
``TASKCENTER_SCREENSHOTS`` names (``docs/images`` refreshes the documentation's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import connections

from batches.assessments import generate
from batches.models import Batch
from batches.services import batch_create, batch_start
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.services import task_cancel, task_create, task_delete
from tests.cluster import wait_for

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.worker]

if not shutil.which(CHROMIUM):
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but {CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

CONFIG = {
    "include_dimensions": ["academic", "non_academic"],
    "calculation_types": ["descriptive", "correlation", "distribution"],
}


@pytest.fixture
def browser():
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in the test thread
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()
        # Queries made while Playwright's loop ran had a connection of their own context: close
        # it, or it outlives the test and PostgreSQL refuses to drop the test database.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def login(browser, server, username: str, *, locale: str = "zh-CN", width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 1000}, locale=locale)
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}/admin/")
    return page


def run_action(page, action: str, values: list[str]):
    for value in values:
        page.check(f'input[name=_selected_action][value="{value}"]')
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()


def status(task) -> str:
    return Task.objects.values_list("status", flat=True).get(pk=task.pk)


def test_operator_starts_watches_pauses_resumes_cancels_and_viewer_cannot(
    cluster, web_server, browser, operator, viewer, tmp_path
):
    generate(20_000, seed=9)  # enough data that the statistics tasks are still running when the page shows
    for code in ("WEB_1", "WEB_2", "WEB_3"):
        batch_create(actor=SYSTEM, batch_code=code, data_source="student_assessments", config=CONFIG)
    page = login(browser, web_server, "operator")

    # Start three batches and watch their progress bars reach 100 % without a reload.
    page.goto(f"{web_server.url}/admin/batches/batch/")
    ids = [str(pk) for pk in Batch.objects.values_list("pk", flat=True)]
    run_action(page, "start_batches", ids)
    page.evaluate("window.__noReload = true")
    finished_at_load = page.locator(".tc-progress[data-status=completed]").count()
    assert finished_at_load < 3, "the tasks were already done when the page rendered: nothing to watch"
    for code in ("WEB_1", "WEB_2", "WEB_3"):
        page.wait_for_selector(f"tr:has-text('{code}') .tc-progress[data-status=completed]", timeout=60_000)
    assert page.evaluate("window.__noReload") is True, "the page was not reloaded"
    assert page.locator(".tc-progress-bar").evaluate_all("bars => bars.map(b => b.style.width)") == ["100%"] * 3
    assert page.locator(".tc-badge[data-status=completed]").all_inner_texts() == ["已完成"] * 3
    page.screenshot(path=tmp_path / "batches-completed.png", full_page=True)

    # A completed statistics task shows its heatmap.
    done = Task.objects.filter(batch__batch_code="WEB_1").get()
    page.goto(f"{web_server.url}/admin/tasks/task/{done.pk}/change/")
    assert page.locator("#tc-heatmap rect").count() == 100
    page.screenshot(path=tmp_path / "task-heatmap.png", full_page=True)

    # Pause and resume a running canary; cancel another.
    keep = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 30, "steps": 300})
    stop = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 30, "steps": 300})
    wait_for(lambda: status(keep) == "processing" and status(stop) == "processing", message="two running canaries")
    page.goto(f"{web_server.url}/admin/tasks/task/")
    run_action(page, "pause_tasks", [str(keep.pk)])
    assert status(keep) == "paused"
    run_action(page, "resume_tasks", [str(keep.pk)])
    wait_for(lambda: status(keep) == "processing", message="the resumed canary to run again")
    run_action(page, "cancel_tasks", [str(stop.pk)])
    assert status(stop) == "cancelled"
    page.screenshot(path=tmp_path / "tasks-steered.png", full_page=True)
    page.close()

    # A viewer sees no state-changing action anywhere.
    page = login(browser, web_server, "viewer")
    for path in ("/admin/tasks/task/", "/admin/batches/batch/"):
        page.goto(f"{web_server.url}{path}")
        assert page.locator("select[name=action]").count() == 0
        assert page.locator("a.addlink").count() == 0
    page.screenshot(path=tmp_path / "viewer.png", full_page=True)
    page.close()
    print(f"screenshots in {tmp_path}")


# --- the operators' console -------------------------------------------------------------------

#: Each text element of the page's tables, headings and charts that does not fit its box: a
#: heading wrapped (a letter a line, in a squeezed column), a label cut off or running outside
#: its chart, or two of a chart's labels on top of each other.
ILLEGIBLE = """() => {
  const bad = [];
  document.querySelectorAll("#tc-dashboard th, #tc-dashboard h2, #tc-dashboard h3").forEach(el => {
    const style = getComputedStyle(el);
    const line = parseFloat(style.lineHeight) || 1.4 * parseFloat(style.fontSize);
    const text = el.textContent.trim();
    if (!text) return;
    const range = document.createRange();
    range.selectNodeContents(el);
    const lines = Math.round(range.getBoundingClientRect().height / line);
    if (el.scrollWidth > el.clientWidth + 1 || lines > 1) bad.push(`${el.tagName} "${text}" on ${lines} lines`);
  });
  document.querySelectorAll("#tc-dashboard svg.tc-chart").forEach(svg => {
    const box = svg.getBoundingClientRect();
    let right = -Infinity;
    [...svg.querySelectorAll("text")].forEach(label => {
      const r = label.getBoundingClientRect();
      if (r.height < 9) bad.push(`label "${label.textContent}" ${r.height.toFixed(1)} px high`);
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1)
        bad.push(`label "${label.textContent}" outside its chart`);
    });
    [...svg.querySelectorAll("text")].filter(t => /:|-/.test(t.textContent))
      .map(t => t.getBoundingClientRect()).sort((a, b) => a.left - b.left)
      .forEach(r => { if (r.left < right) bad.push("time labels overlap"); right = r.right; });
  });
  return bad;
}"""


def screenshots_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("TASKCENTER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def has_cjk_font() -> bool:
    try:
        return bool(subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip())
    except FileNotFoundError:
        return False


def wait_until_the_bar_moves(page, selector: str) -> None:
    """Wait until the progress bar ``selector`` is wider than it is now (the page not reloaded)."""
    width = f"parseFloat(document.querySelector({json.dumps(selector)}).querySelector('.tc-progress-bar').style.width)"
    page.wait_for_selector(selector)
    before = page.evaluate(f"() => {width}")
    page.wait_for_function(f"() => {width} > {before}", timeout=15_000)


def test_console_an_operator_watches_and_steers_from_the_dashboard_and_the_task_page(
    cluster, web_server, browser, operator, viewer, tmp_path
):
    from django.utils import timezone

    from tasks.models import TaskLog

    if os.environ.get("CI") == "true":
        assert has_cjk_font(), "CI=true but no CJK font: .ci/run installs Debian's fonts-noto-cjk"
    shots = screenshots_dir(tmp_path)
    generate(2_000, seed=5)
    batch_create(actor=SYSTEM, batch_code="CONSOLE_1", data_source="student_assessments", config=CONFIG)
    batch_start(actor=SYSTEM, batch_code="CONSOLE_1")
    for _ in range(3):  # finished work for the charts and the queues table
        task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0.2, "steps": 2})
    task_create(  # fails its three attempts
        actor=SYSTEM, task_type="canary", params={"seconds": 0.2, "steps": 4, "fail_at_step": 2, "fail_times": 3}
    )
    wait_for(lambda: not Task.objects.filter(status__in=["pending", "processing"]).exists(), message="warm-up")
    long = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 24, "steps": 240})
    wait_for(lambda: status(long) == "processing", message="the long canary to start")

    # The dashboard, at 1280 px: the running task's bar moves without a reload; everything reads.
    page = login(browser, web_server, "operator", locale="en-US", width=1280)
    page.goto(f"{web_server.url}/admin/dashboard/")
    page.evaluate("window.__noReload = true")
    row = f"#tc-running tr:has(a[href$='/{long.pk}/change/']) .tc-progress"
    wait_until_the_bar_moves(page, row)
    assert page.evaluate("window.__noReload") is True, "the dashboard was reloaded"
    assert page.evaluate(ILLEGIBLE) == []
    started = timezone.localtime(Task.objects.get(pk=long.pk).started_at).strftime("%H:%M:%S")
    assert page.locator(f"#tc-running tr:has(a[href$='/{long.pk}/change/'])").inner_text().count(started) == 1
    assert "(Asia/Shanghai)" in page.locator(".tc-updated").inner_text()
    assert "Times in Asia/Shanghai" in page.locator("#user-tools").text_content()
    page.screenshot(path=shots / "dashboard-en.png", full_page=True)

    # Its page: the bar moves; pause and resume with the page's buttons; a new log line appears.
    page.click(f"#tc-running a[href$='/{long.pk}/change/']")
    page.evaluate("window.__noReload = true")
    overall = f".field-progress_bar .tc-progress[data-task='{long.pk}']"
    wait_until_the_bar_moves(page, overall)
    assert page.evaluate("window.__noReload") is True, "the task page was reloaded"
    assert page.locator("button[name=resume]").is_hidden() and page.locator("button[name=retry]").is_hidden()
    page.click("button[name=pause]")
    page.wait_for_load_state()
    assert "Task paused." in page.locator(".messagelist").inner_text()
    wait_for(lambda: status(long) == "paused", message="the canary to pause")
    page.wait_for_selector("button[name=resume]:visible", timeout=10_000)
    assert page.locator("button[name=pause]").is_hidden()
    page.click("button[name=resume]")
    page.wait_for_load_state()
    page.evaluate("window.__noReload = true")
    page.wait_for_selector("#tc-log-lines .tc-log:has-text('continuing from step')", timeout=30_000)
    page.wait_for_selector("button[name=pause]:visible", timeout=10_000)  # shown again once it runs
    assert page.evaluate("window.__noReload") is True, "the new log line came without a reload"
    # One clock: the log line's time is its timestamp in the display time zone, as the header says.
    line = TaskLog.objects.filter(task_id=long.pk, message__startswith="continuing").latest("id")
    shown = page.locator("#tc-log-lines .tc-log:has-text('continuing from step')").last.inner_text()
    assert shown.startswith(timezone.localtime(line.timestamp).strftime("%H:%M:%S"))
    page.screenshot(path=shots / "task-page-en.png", full_page=True)
    page.close()

    # The same pages in Chinese, for the documentation.
    page = login(browser, web_server, "operator", locale="zh-CN", width=1280)
    page.goto(f"{web_server.url}/admin/dashboard/")
    assert page.evaluate(ILLEGIBLE) == []
    page.screenshot(path=shots / "dashboard-zh.png", full_page=True)
    page.goto(f"{web_server.url}/admin/tasks/task/{long.pk}/change/")
    page.screenshot(path=shots / "task-page-zh.png", full_page=True)
    page.close()

    # A viewer: the dashboard, but no buttons on a task's page, and a forged POST is refused.
    page = login(browser, web_server, "viewer", locale="en-US", width=1280)
    page.goto(f"{web_server.url}/admin/dashboard/")
    assert page.locator("#tc-queues").is_visible()
    page.goto(f"{web_server.url}/admin/tasks/task/{long.pk}/change/")
    assert page.locator(".tc-task-action").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    before = status(long)
    refused = page.request.post(
        f"{web_server.url}/admin/tasks/task/{long.pk}/steer/cancel/",
        headers={"X-CSRFToken": token, "Referer": page.url},
    )
    assert refused.status == 403 and status(long) == before

    # Deleted meanwhile (by someone else): the page says so and stops asking for it.
    task_cancel(actor=SYSTEM, task_id=long.pk)
    task_delete(actor=SYSTEM, task_id=long.pk)
    page.wait_for_selector("#tc-task-gone:visible", timeout=10_000)
    asked = []
    page.on("request", lambda request: asked.append(request.url) if str(long.pk) in request.url else None)
    page.wait_for_timeout(5_000)  # more than two polling intervals
    assert asked == []

    # Its session ends (logged out elsewhere): the dashboard goes to the login page, rather than
    # showing the login form inside itself.
    page.goto(f"{web_server.url}/admin/dashboard/")
    page.context.clear_cookies()
    page.wait_for_url("**/admin/login/?next=/admin/dashboard/", timeout=15_000)
    page.close()
    print(f"screenshots in {shots}")
