"""Every Runboard page in a browser with something to show: each passes axe-core (no critical
or serious violation), the board fits a phone's width, and the lineage explorer re-centres on
the node chosen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from controlroom_devstack.stack import ServiceStack
from controlroom_devstack.waiting import eventually

from .conftest import (
    Tenant,
    assert_accessible,
    assert_no_placeholder_text,
    go,
    job_body,
    sign_in_by_link,
    ui_url,
)

SOURCE, TARGET = "raw.ui_orders", "gold.ui_orders"
TEMPLATE = "nightly-orders"
LINEAGE_JOB = (
    "import os\n"
    "print('copied the orders', flush=True)\n"
    "os.makedirs('output', exist_ok=True)\n"
    "open('output/summary.json', 'w').write('{\"rows\": 7}')\n"
)


@dataclass(frozen=True)
class Estate:
    """What the pages show: a completed run in a session that recorded a lineage edge, a
    template and a schedule of it."""

    tenant: Tenant
    run_id: str
    session_id: str
    session_name: str


@pytest.fixture(scope="module")
async def estate(stack: ServiceStack, mint: Callable[[str, str], str]) -> AsyncIterator[Estate]:
    tenant = Tenant("ui-pages", stack, mint)
    async with tenant.client("admin") as api:
        response = await api.post("/api/v1/sessions", json={"name": "Orders backfill"})
        assert response.status_code == 201, response.text
        session_id = response.json()["session_id"]
        job = job_body(
            LINEAGE_JOB,
            spec={"text": "Copy the orders", "inputs": {"source": SOURCE, "target": TARGET}},
            session_id=session_id,
        )
        run = await api.post("/api/v1/jobs/run", json=job)
        assert run.status_code == 202, run.text
        template = await api.post(
            "/api/v1/templates",
            json={
                "name": TEMPLATE,
                "description": "The nightly orders copy",
                "job": job_body("print('nightly')", spec={"text": "Nightly orders"}),
            },
        )
        assert template.status_code == 201, template.text
        schedule = await api.post(
            "/api/v1/schedules", json={"template": TEMPLATE, "cron": "0 2 * * *"}
        )
        assert schedule.status_code == 201, schedule.text
        run_id: str = run.json()["run_id"]
        await tenant.wait_for(run_id, "completed")

        async def edge_recorded() -> bool:
            graph = (await api.get("/api/v1/lineage/graph", params={"entity": SOURCE})).json()
            return bool(graph["downstream"])

        await eventually(edge_recorded, timeout=30, what="the run's lineage edge")
    yield Estate(tenant, run_id, session_id, "Orders backfill")


async def _signin(page: Page, stack: ServiceStack, _estate: Estate) -> None:
    await page.goto(f"{ui_url(stack)}#/signin")
    await expect(page.get_by_test_id("page-signin")).to_be_visible()
    await expect(page.get_by_label("Token")).to_be_visible()


async def _runs(page: Page, _stack: ServiceStack, estate: Estate) -> None:
    await go(page, "#/runs")
    run = page.get_by_test_id(f"run-{estate.run_id}")
    await expect(run).to_have_attribute("data-status", "completed")


async def _run(page: Page, _stack: ServiceStack, estate: Estate) -> None:
    await go(page, f"#/runs/{estate.run_id}")
    await expect(page.get_by_test_id("run-status")).to_have_text("completed")
    await expect(page.get_by_test_id("logs")).to_contain_text("copied the orders")
    await expect(page.get_by_test_id("artifacts")).to_contain_text("output/summary.json")
    drawing = page.locator('[data-testid="run-lineage"] svg, svg[data-testid="run-lineage"]')
    await expect(drawing.first).to_be_visible()


async def _sessions(page: Page, _stack: ServiceStack, estate: Estate) -> None:
    await go(page, "#/sessions")
    await expect(page.get_by_test_id("page-sessions")).to_contain_text(estate.session_name)


async def _session(page: Page, _stack: ServiceStack, estate: Estate) -> None:
    await go(page, f"#/sessions/{estate.session_id}")
    await expect(page.get_by_test_id("page-session")).to_contain_text(estate.session_name)
    await expect(page.get_by_test_id("page-session")).to_contain_text("completed")


async def _executors(page: Page, _stack: ServiceStack, _estate: Estate) -> None:
    await go(page, "#/executors")
    await expect(page.get_by_test_id("executor").first).to_be_visible()


async def _templates(page: Page, _stack: ServiceStack, _estate: Estate) -> None:
    await go(page, "#/templates")
    await expect(page.get_by_test_id("page-templates")).to_contain_text(TEMPLATE)
    await expect(page.get_by_test_id("run-template").first).to_be_visible()


async def _schedules(page: Page, _stack: ServiceStack, _estate: Estate) -> None:
    await go(page, "#/schedules")
    await expect(page.get_by_test_id("page-schedules")).to_contain_text(TEMPLATE)
    await expect(page.get_by_test_id("pause").first).to_be_visible()


async def _routing(page: Page, _stack: ServiceStack, _estate: Estate) -> None:
    await go(page, "#/routing")
    await expect(page.get_by_test_id("page-routing")).to_contain_text("diagram_export")


async def _lineage(page: Page, _stack: ServiceStack, _estate: Estate) -> None:
    await go(page, f"#/lineage?entity={SOURCE}")
    await expect(page.locator(f'[data-testid="node"][data-entity="{TARGET}"]')).to_be_visible()


PAGES: dict[str, Callable[[Page, ServiceStack, Estate], Awaitable[None]]] = {
    "signin": _signin,
    "runs": _runs,
    "run": _run,
    "sessions": _sessions,
    "session": _session,
    "executors": _executors,
    "templates": _templates,
    "schedules": _schedules,
    "routing": _routing,
    "lineage": _lineage,
}


@pytest.mark.parametrize("name", PAGES)
async def test_page_has_no_serious_accessibility_violation(
    name: str, page: Page, stack: ServiceStack, estate: Estate
) -> None:
    """Signed in as an admin, so every control a role can be offered is on the page."""
    if name != "signin":
        await sign_in_by_link(page, stack, estate.tenant.token("admin"))
    await PAGES[name](page, stack, estate)
    await expect(page.get_by_test_id(f"page-{name}")).to_be_visible()
    await expect(page.locator("h1")).to_have_count(1)
    await assert_accessible(page, f"the {name} page")
    await assert_no_placeholder_text(page, f"the {name} page")


@pytest.mark.parametrize("viewport", [{"width": 375, "height": 812}], indirect=True)
async def test_board_and_run_page_fit_a_phone_without_sideways_scrolling(
    page: Page, stack: ServiceStack, estate: Estate
) -> None:
    await sign_in_by_link(page, stack, estate.tenant.token("operator"))
    for show in (_runs, _run):
        await show(page, stack, estate)
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{page.url}: {widths[0]} px wide in a {widths[1]} px view"


async def test_lineage_explorer_draws_the_graph_and_recentres_on_a_chosen_node(
    page: Page, stack: ServiceStack, estate: Estate
) -> None:
    await sign_in_by_link(page, stack, estate.tenant.token("viewer"))
    await go(page, f"#/lineage?entity={SOURCE}")
    await expect(page.locator("input#entity")).to_have_value(SOURCE)
    source = page.locator(f'[data-testid="node"][data-entity="{SOURCE}"]')
    target = page.locator(f'[data-testid="node"][data-entity="{TARGET}"]')
    await expect(source).to_be_visible()
    await expect(target).to_be_visible()

    await target.click()
    await expect(page).to_have_url(re.compile(rf"#/lineage\?(.*&)?entity={re.escape(TARGET)}"))
    await expect(page.locator("input#entity")).to_have_value(TARGET)

    # The keyboard does what the mouse does.
    await page.locator(f'[data-testid="node"][data-entity="{SOURCE}"]').focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"#/lineage\?(.*&)?entity={re.escape(SOURCE)}"))
    await expect(page.locator("input#entity")).to_have_value(SOURCE)
