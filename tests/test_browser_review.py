"""The reviewer page in headless Chromium: sign in, the queue rows, a decision, a rendered plot."""

from __future__ import annotations

from browser import chromium, screenshot
from conftest import read_records
from playwright.sync_api import expect


def test_review_and_stats_tabs_in_a_browser(served, data_dir):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{served}/review/")
        # the login page first: nothing of the queue is visible before signing in
        expect(page.get_by_text("Review flagged replies")).to_have_count(0)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill("pw-ann")
        page.get_by_role("button", name="Login").click()

        expect(page.get_by_text("Review flagged replies")).to_be_visible()
        table = page.get_by_role("grid", name="Queue (newest first)")
        expect(table.get_by_role("row")).to_have_count(4)  # the header and the three flagged replies
        expect(table.get_by_role("gridcell", name="re hola")).to_be_visible()
        expect(table.get_by_role("gridcell", name="Inaccurate ×2, Harmful ×1")).to_be_visible()
        expect(table.get_by_role("gridcell", name="re bonjour")).to_be_visible()
        table.get_by_role("gridcell", name="re tell me more").click()
        expect(page.get_by_text("actually wrong")).to_be_visible()  # the rating's comment, in the details
        screenshot(page, "review-queue")

        page.get_by_label("confirmed").check()
        page.get_by_label("Note (optional)").fill("checked the source")
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_text("Recorded: confirmed by ann.")).to_be_visible()
        expect(table.get_by_role("gridcell", name="re tell me more")).to_have_count(0)  # no longer open
        expect(table.get_by_role("row")).to_have_count(3)

        page.get_by_role("tab", name="Stats").click()
        expect(page.get_by_text("2 flagged replies without a decision")).to_be_visible()  # counted anew
        plot = page.locator(".vega-embed, canvas, svg.marks").first
        expect(plot).to_be_visible()
        screenshot(page, "review-stats")
        page.close()

    (review,) = read_records(data_dir, "reviews")
    assert (review["decision"], review["reviewer"], review["note"]) == ("confirmed", "ann", "checked the source")
