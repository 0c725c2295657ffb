"""An operator and a viewer in a real browser (Playwright driving Debian's Chromium) against
gunicorn and a real qcluster. Screenshots go to the test's output folder."""

from __future__ import annotations

import os
import shutil

import pytest
from django.db import connections

from batches.assessments import generate
from batches.models import Batch
from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.services import task_create
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


def login(browser, server, username: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
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
