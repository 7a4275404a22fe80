"""The case page while a case waits, in headless Chromium: its place in the queue, the tab
title, and the notification when the answer is ready. The browser's Notification is
replaced by a recorder (a headless browser shows none); the page's own script is what
asks for permission and sends it."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from clinical import lifecycle
from tests.browser.support import sign_in
from tests.factories import submitted_case
from tests.fakes import FakeModelServer, agreeing_completion

# Notifications are kept in sessionStorage: the page reloads itself when the case finishes.
RECORDING_NOTIFICATION = """
(() => {
  const shown = () => JSON.parse(sessionStorage.getItem("notifications") || "[]");
  class RecordingNotification {
    constructor(title, options) {
      sessionStorage.setItem("notifications",
        JSON.stringify([...shown(), { title, body: (options || {}).body }]));
    }
    static requestPermission() {
      RecordingNotification.permission = "granted";
      return Promise.resolve("granted");
    }
  }
  RecordingNotification.permission = "default";
  window.Notification = RecordingNotification;
})();
"""


def test_waiting_case_shows_its_place_and_notifies_when_the_answer_is_ready(
    page: Page, live_server: Any, alice: User, fake_model: FakeModelServer
) -> None:
    page.add_init_script(RECORDING_NOTIFICATION)
    sign_in(page, live_server, "alice")
    case = submitted_case(alice)
    page.goto(f"{live_server.url}/cases/{case.id}/")
    expect(page).to_have_title(re.compile(r"^Waiting · Case"))
    expect(page.locator("[data-field=queue]")).to_contain_text("No case is ahead of this one.")

    page.get_by_role("button", name="Notify me when the answer is ready").click()
    expect(page.locator("[data-field=notify]")).to_be_hidden()

    fake_model.push(agreeing_completion(["Acute myocardial infarction"]))
    lifecycle.case_run(case_id=case.id)
    page.locator("#answer").wait_for(timeout=30_000)  # the page reloaded itself
    expect(page).to_have_title(re.compile(r"^✓ Answer ready · Case"))
    shown = json.loads(page.evaluate("sessionStorage.getItem('notifications')") or "[]")
    assert shown == [{"title": "Bedside: Completed", "body": "Answer ready"}]
