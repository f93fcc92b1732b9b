"""The runs board and the run page in a browser: signing in, runs changing live without a
reload, logs and artifacts, cancelling, what a viewer and another tenant may see, why a run
waits, and filters kept in the URL."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from controlroom_devstack.stack import ServiceStack, mint_dev_token
from controlroom_devstack.waiting import eventually

from .conftest import (
    CAPPED_TENANT,
    SLEEPER,
    Tenant,
    assert_no_placeholder_text,
    board_live,
    go,
    sign_in,
    sign_in_by_link,
    ui_url,
)

RUN_MS = 90_000
"""How long a trivial job may take to reach the board (it may run in a container)."""

REPORT = (
    "import os\n"
    "print('line one: extracting', flush=True)\n"
    "print('<img src=x data-hostile=1> is text, not markup', flush=True)\n"
    "os.makedirs('output', exist_ok=True)\n"
    "open('output/report.csv', 'w').write('rows,42\\n')\n"
    "print('line three: report written', flush=True)\n"
)


def card(page: Page, run_id: str) -> Locator:
    return page.get_by_test_id(f"run-{run_id}")


def cards(page: Page) -> Locator:
    """Every run card on the board (each carries its status)."""
    return page.locator('[data-testid="page-runs"] [data-testid^="run-"][data-status]')


async def test_sign_in_through_the_form_shows_who_is_signed_in(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-signin")
    response = await page.goto(f"{ui_url(stack)}#/signin")
    assert response is not None and response.ok
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await expect(page.get_by_test_id("whoami")).not_to_contain_text("ui-signin")

    await sign_in(page, stack, tenant.token("operator"))

    await expect(page.get_by_test_id("whoami")).to_contain_text(
        re.compile(r"developer\s*·\s*ui-signin\s*·\s*operator")
    )
    assert await page.evaluate("localStorage.getItem('controlroom.token')") == tenant.token()
    await expect(page.get_by_role("navigation").get_by_role("link", name="Lineage")).to_be_visible()
    await expect(page.locator("h1")).to_have_count(1)


async def test_a_token_the_gateway_refuses_leaves_the_user_signed_out(
    page: Page, stack: ServiceStack
) -> None:
    """A well-formed token signed with another secret: the UI may try it, but ends on the
    sign-in page, the token not kept, nobody shown as signed in."""
    forged = mint_dev_token("another-secret-another-secret-another-secret", tenant="ui-forged")
    await page.goto(f"{ui_url(stack)}#/signin")
    await page.evaluate(
        "() => { window.__left = false; addEventListener('hashchange', () => {"
        " if (!location.hash.startsWith('#/signin')) window.__left = true }) }"
    )
    await page.get_by_label("Token").fill(forged)
    await page.get_by_role("button", name="Sign in").click()

    # Either it refused the token on the spot (an alert) or it left and came back on the
    # API's 401: wait for whichever it did, then check where it ended.
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=page-signin] [role=alert]') !== null"
        " || (window.__left && location.hash.startsWith('#/signin')"
        "     && document.querySelector('[data-testid=page-signin]') !== null)"
    )
    await expect(page.get_by_test_id("page-signin")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('controlroom.token')") is None
    await expect(page.get_by_test_id("page-runs")).to_have_count(0)
    await expect(page.get_by_test_id("whoami")).not_to_contain_text("ui-forged")


async def test_sign_in_link_stores_the_token_and_takes_it_out_of_the_url(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-link")
    await sign_in_by_link(page, stack, tenant.token("viewer"))
    assert "token" not in page.url
    assert await page.evaluate("localStorage.getItem('controlroom.token')") == tenant.token(
        "viewer"
    )
    await expect(page.get_by_test_id("whoami")).to_contain_text("viewer")


async def test_a_link_does_not_switch_a_signed_in_user_without_asking(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    mine, theirs = tenants("ui-link-mine"), tenants("ui-link-theirs")
    await sign_in(page, stack, mine.token("operator"))
    await page.goto(f"{ui_url(stack)}#/signin?token={theirs.token('operator')}")
    await expect(page.get_by_test_id("page-signin")).to_contain_text("Press Sign in to switch")
    assert "token" not in page.url
    stored = "localStorage.getItem('controlroom.token')"
    assert await page.evaluate(stored) == mine.token("operator")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("whoami")).to_contain_text("ui-link-theirs")
    assert await page.evaluate(stored) == theirs.token("operator")


async def test_a_run_reaches_completed_on_the_board_live_then_its_logs_and_artifacts(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant], tmp_path: Path
) -> None:
    tenant = tenants("ui-board")
    await sign_in(page, stack, tenant.token())
    await board_live(page)
    # Set on this document: a reload or a navigation would lose it.
    await page.evaluate("window.__sameDocument = 'kept'")

    run_id = await tenant.submit(REPORT, spec={"text": "Write the report"})

    await expect(card(page, run_id)).to_be_visible()
    await expect(card(page, run_id)).to_have_attribute("data-status", "completed", timeout=RUN_MS)
    await expect(card(page, run_id).get_by_test_id("status")).to_contain_text("completed")
    assert await page.evaluate("window.__sameDocument") == "kept", "the board reloaded"
    applied = await page.evaluate("window.__runboard && window.__runboard.lastApplied")
    assert applied is not None and applied["run_id"] == run_id, applied

    async def both_artifacts() -> bool:
        return len((await tenant.run(run_id))["artifacts"]) == 2

    await eventually(both_artifacts, timeout=30, what="the run's two artifacts")
    await card(page, run_id).locator(f'a[href$="#/runs/{run_id}"]').first.click()

    await expect(page.get_by_test_id("page-run")).to_be_visible()
    assert page.url.endswith(f"#/runs/{run_id}")
    assert await page.evaluate("window.__sameDocument") == "kept", "the run page reloaded"
    await expect(page.get_by_test_id("run-status")).to_have_text("completed")
    logs = page.get_by_test_id("logs")
    await expect(logs).to_contain_text("line one: extracting")
    await expect(logs).to_contain_text("line three: report written")
    # Job output is shown as text: markup in it is never parsed into elements.
    await expect(logs).to_contain_text("<img src=x data-hostile=1> is text")
    await expect(page.locator("[data-hostile]")).to_have_count(0)
    await expect(page.get_by_test_id("attempts")).to_contain_text("completed")
    await expect(page.get_by_test_id("job-spec")).to_contain_text("Write the report")
    await expect(page.get_by_test_id("job-code")).to_contain_text("line one: extracting")
    await assert_no_placeholder_text(page, "the completed run's page")

    row = page.get_by_test_id("artifacts").locator("tr", has_text="output/report.csv")
    async with page.expect_download() as downloading:
        await row.get_by_test_id("artifact-download").click()
    download = await downloading.value
    assert download.suggested_filename.endswith("report.csv"), download.suggested_filename
    saved = tmp_path / "report.csv"
    await download.save_as(saved)
    assert saved.read_bytes() == b"rows,42\n"

    await row.get_by_test_id("artifact-preview").click()
    await expect(page.get_by_test_id("preview")).to_contain_text("rows,42")

    async with page.expect_download() as downloading:
        await page.get_by_test_id("download-zip").click()
    archive = tmp_path / "artifacts.zip"
    await (await downloading.value).save_as(archive)
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["logs/stdout.log", "output/report.csv"]
        assert zipped.read("output/report.csv") == b"rows,42\n"
        assert b"line three: report written" in zipped.read("logs/stdout.log")


async def test_an_operator_cancels_one_run_from_its_card_and_two_in_bulk(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-cancel")
    one = await tenant.submit(SLEEPER)
    await tenant.wait_for(one, "running")
    await sign_in(page, stack, tenant.token("operator"))
    await board_live(page)

    await expect(card(page, one)).to_have_attribute("data-status", "running")
    cancel = card(page, one).get_by_test_id("cancel")
    await expect(cancel).to_have_attribute("aria-label", re.compile(r"^Cancel run \S+"))
    await cancel.click()
    await expect(card(page, one)).to_have_attribute("data-status", "cancelled", timeout=RUN_MS)
    await expect(card(page, one).get_by_test_id("cancel")).to_have_count(0)
    assert (await tenant.run(one))["status"] == "cancelled"

    two = [await tenant.submit(SLEEPER), await tenant.submit(SLEEPER)]
    for run_id in two:
        await tenant.wait_for(run_id, "running")
        await expect(card(page, run_id)).to_have_attribute("data-status", "running")
        await card(page, run_id).get_by_test_id("select").check()
    await page.get_by_test_id("bulk-cancel").click()
    for run_id in two:
        await expect(card(page, run_id)).to_have_attribute(
            "data-status", "cancelled", timeout=RUN_MS
        )
        assert (await tenant.run(run_id))["status"] == "cancelled"


async def test_an_operator_cancels_a_running_run_from_its_page(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-cancel-page")
    run_id = await tenant.submit(SLEEPER)
    await tenant.wait_for(run_id, "running")
    await sign_in(page, stack, tenant.token("operator"))
    await go(page, f"#/runs/{run_id}")
    await expect(page.get_by_test_id("run-status")).to_have_text("running")
    await expect(page.get_by_test_id("logs")).to_contain_text("working", timeout=RUN_MS)
    await page.get_by_test_id("page-run").get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("run-status")).to_have_text("cancelled", timeout=RUN_MS)
    await expect(page.get_by_test_id("page-run").get_by_test_id("cancel")).to_have_count(0)


async def test_a_run_that_leaves_the_boards_filter_leaves_the_board_live(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-filter-live")
    run_id = await tenant.submit(SLEEPER)
    await tenant.wait_for(run_id, "running")
    await sign_in(page, stack, tenant.token("operator"))
    await go(page, "#/runs?status=running")
    await board_live(page)
    await expect(card(page, run_id)).to_have_attribute("data-status", "running")
    await page.evaluate("() => { window.__noReload = true }")
    async with tenant.client() as api:
        assert (await api.post(f"/api/v1/runs/{run_id}/cancel")).status_code == 202
    await expect(card(page, run_id)).to_have_count(0, timeout=RUN_MS)
    assert await page.evaluate("() => window.__noReload === true")  # no reload happened
    await expect(page.get_by_test_id("lane-A")).to_contain_text("No runs")


async def test_a_viewer_is_offered_no_cancelling_anywhere(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-viewer")
    run_id = await tenant.submit(SLEEPER)
    await tenant.wait_for(run_id, "running")
    await sign_in_by_link(page, stack, tenant.token("viewer"))
    await board_live(page)

    await expect(card(page, run_id)).to_have_attribute("data-status", "running")
    await expect(card(page, run_id).get_by_test_id("status")).to_contain_text("running")
    await expect(card(page, run_id).get_by_test_id("cancel")).to_have_count(0)
    await expect(page.get_by_test_id("bulk-cancel")).to_have_count(0)
    await expect(page.get_by_role("button", name=re.compile("cancel", re.I))).to_have_count(0)

    await go(page, f"#/runs/{run_id}")
    await expect(page.get_by_test_id("run-status")).to_have_text("running")
    await expect(page.get_by_test_id("logs")).to_contain_text("working", timeout=RUN_MS)
    await expect(page.get_by_test_id("page-run").get_by_test_id("cancel")).to_have_count(0)
    await expect(page.get_by_role("button", name=re.compile("cancel", re.I))).to_have_count(0)


async def test_another_tenants_run_is_neither_listed_nor_found(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    theirs, ours = tenants("ui-tenant-x"), tenants("ui-tenant-y")
    their_run = await theirs.submit("print('x')")
    our_run = await ours.submit("print('y')")
    await theirs.wait_for(their_run, "completed")
    await ours.wait_for(our_run, "completed")

    await sign_in(page, stack, ours.token("viewer"))
    await expect(card(page, our_run)).to_have_attribute("data-status", "completed")
    await expect(card(page, their_run)).to_have_count(0)
    await expect(cards(page)).to_have_count(1)

    await go(page, f"#/runs/{their_run}")
    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text(re.compile("not found", re.I))
    await expect(page.get_by_test_id("run-status")).to_have_count(0)
    await expect(page.get_by_test_id("logs")).to_have_count(0)


async def test_a_waiting_run_says_it_waits_for_its_tenants_cap(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants(CAPPED_TENANT)
    first = await tenant.submit(SLEEPER)
    await tenant.wait_for(first, "running")
    second = await tenant.submit(SLEEPER)

    async def waiting_for_the_cap() -> bool:
        reason: str | None = (await tenant.run(second))["queue_reason"]
        return reason == "tenant_cap_reached"

    # The reason is the scheduler's, asked when runs are read: wait until it has one.
    await eventually(waiting_for_the_cap, timeout=30, what="the second run's queue reason")
    await sign_in(page, stack, tenant.token("viewer"))
    await expect(card(page, first)).to_have_attribute("data-status", "running")
    await expect(card(page, second)).to_have_attribute("data-status", "queued")
    reason = card(page, second).get_by_test_id("queue-reason")
    await expect(reason).to_have_text(re.compile(r"tenant cap 1/1, #1 in line"))
    await expect(card(page, first).get_by_test_id("queue-reason")).to_have_count(0)

    await go(page, f"#/runs/{second}")
    await expect(page.get_by_test_id("run-status")).to_have_text("queued")
    await expect(page.get_by_test_id("page-run").get_by_test_id("queue-reason")).to_have_text(
        re.compile(r"tenant cap 1/1, #1 in line")
    )


async def test_a_status_filter_lives_in_the_url_and_survives_a_reload(
    page: Page, stack: ServiceStack, tenants: Callable[[str], Tenant]
) -> None:
    tenant = tenants("ui-filters")
    done = await tenant.submit("print('fine')")
    broken = await tenant.submit("import sys\nsys.exit(3)\n", retry={"max_attempts": 1})
    await tenant.wait_for(done, "completed")
    await tenant.wait_for(broken, "failed")

    await sign_in(page, stack, tenant.token("viewer"))
    await expect(cards(page)).to_have_count(2)
    await expect(card(page, broken).get_by_test_id("failure-reason")).to_contain_text(
        re.compile(r"exit_code \(exit 3\)")
    )
    await expect(page.get_by_test_id("count-completed")).to_have_text("1")
    await expect(page.get_by_test_id("count-failed")).to_have_text("1")

    board = page.get_by_test_id("page-runs")
    status = board.get_by_label("Status", exact=True)
    await status.select_option("completed")
    await board.get_by_role("button", name="Apply").click()

    await expect(page).to_have_url(re.compile(r"#/runs\?(.*&)?status=completed(&|$)"))
    await expect(card(page, broken)).to_have_count(0)
    await expect(card(page, done)).to_have_attribute("data-status", "completed")
    await expect(cards(page)).to_have_count(1)

    await page.reload()
    await expect(page.get_by_test_id("page-runs")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"status=completed"))
    await expect(status).to_have_value("completed")
    await expect(card(page, done)).to_have_attribute("data-status", "completed")
    await expect(card(page, broken)).to_have_count(0)
    await expect(cards(page)).to_have_count(1)
