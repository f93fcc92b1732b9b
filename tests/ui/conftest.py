"""The Runboard UI (issue [7]) driven by a real browser: headless Debian chromium through
Playwright, against a whole Control Room (tests/conftest.py's stack) serving it at ``/ui/``.

Every test leaves a full-page screenshot of its page, pass or fail, in
``$CONTROLROOM_UI_SCREENSHOTS`` (or its tmp dir) as ``<test name>.png``. A page that throws an
uncaught error or breaks its Content-Security-Policy fails the test that opened it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from controlroom_devstack.infra import NatsServer, Postgres
from controlroom_devstack.stack import ServiceStack, mint_dev_token

from ..conftest import SECRET, whole_system

CHROMIUM = Path("/usr/bin/chromium")
CAPPED_TENANT = "ui-capped"
"""A tenant the scheduler lets run one run at a time (its queued runs say why they wait)."""
TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUN_TIMEOUT = 90.0
"""Seconds a trivial job may take to end: it may run in a container on a busy machine."""
UI_TIMEOUT_MS = 20_000


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """CI installs Debian's chromium (.ci/run); without it these tests cannot run at all."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the UI tests")


@pytest.fixture(scope="module")
async def stack(
    nats_server: NatsServer,
    postgres_server: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
    job_sandbox_env: dict[str, str],
) -> AsyncIterator[ServiceStack]:
    """tests/conftest.py's stack on a database of this module's own, where one tenant has a
    cap of one run at a time."""
    extra_env = {"CONTROLROOM_TENANT_LIMITS": f'{{"{CAPPED_TENANT}": 1}}', **job_sandbox_env}
    base = tmp_path_factory.mktemp("ui-stack")
    database = f"ui_{uuid.uuid4().hex[:8]}"
    async with whole_system(
        nats_server, postgres_server, base, database=database, extra_env=extra_env
    ) as services:
        yield services


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    # A page waits on the system behind it (a projector, a scheduler pass): more than 5 s.
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    configured = os.environ.get("CONTROLROOM_UI_SCREENSHOTS")
    directory = Path(configured) if configured else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class PageProblems:
    """What the page did wrong on its own: uncaught errors and CSP refusals."""

    seen: list[str] = field(default_factory=list)


@pytest.fixture
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    """The browser window; a test that needs a narrow screen sets it with
    ``@pytest.mark.parametrize("viewport", [{"width": 375, "height": 812}], indirect=True)``."""
    size: dict[str, int] = getattr(request, "param", {"width": 1280, "height": 900})
    return size


@pytest.fixture
async def page(
    browser: Browser,
    request: pytest.FixtureRequest,
    screenshots: Path,
    viewport: dict[str, int],
) -> AsyncIterator[Page]:
    """A page in a fresh browser context (no token stored), screenshotted at the end."""
    context = await browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]},
        accept_downloads=True,
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda error: problems.seen.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.seen.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )

    # A confirmation the UI asks for is answered yes (Playwright would dismiss it).
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    try:
        yield page
    finally:
        path = screenshots / f"{request.node.name}.png"
        try:
            await page.screenshot(path=str(path), full_page=True, timeout=10_000)
        finally:
            await context.close()
    assert not problems.seen, f"the page misbehaved (screenshot {path}): {problems.seen}"


def ui_url(stack: ServiceStack) -> str:
    return f"{stack.url('gateway')}/ui/"


async def sign_in(page: Page, stack: ServiceStack, token: str) -> None:
    """Through the sign-in form, as a person would; returns on the runs board."""
    await page.goto(f"{ui_url(stack)}#/signin")
    await expect(page.get_by_test_id("page-signin")).to_be_visible()
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("page-runs")).to_be_visible()


async def sign_in_by_link(page: Page, stack: ServiceStack, token: str) -> None:
    """Through the link ``make up`` prints; returns on the runs board."""
    await page.goto(f"{ui_url(stack)}#/signin?token={token}")
    await expect(page.get_by_test_id("page-runs")).to_be_visible()


async def board_live(page: Page) -> None:
    """The board's tenant stream delivered ``ready``: changes from now on reach it."""
    await expect(page.get_by_test_id("live")).to_have_attribute("data-state", "open")


async def go(page: Page, route: str) -> None:
    """Follow an in-app route (``#/runs/<id>``) the way a link does: no reload."""
    await page.evaluate("route => { location.hash = route }", route)


async def assert_accessible(page: Page, what: str) -> None:
    """axe-core finds no critical or serious violation on the page as it is now."""
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    bad = [v for v in violations if v.get("impact") in ("critical", "serious")]
    assert not bad, f"{what}: axe-core found " + "; ".join(
        f"{v['id']} ({v['impact']}, {len(v['nodes'])}x) e.g. at {v['nodes'][0]['target']}: "
        f"{v['help']}"
        for v in bad
    )


_PLACEHOLDERS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const shown = !node.parentElement.closest('pre, code, textarea, script');
    if (shown && /^(null|undefined|NaN|Invalid Date|\\[object Object\\])$/.test(text)) {
      found.push(`${JSON.stringify(text)} in ${node.parentElement.outerHTML.slice(0, 160)}`);
    }
  }
  return found;
}"""


async def assert_no_placeholder_text(page: Page, what: str) -> None:
    """Nothing on the page reads "null", "undefined", "NaN" or "[object Object]": a value the
    UI forgot to format (what jobs wrote, in <pre>s, may say anything)."""
    stray: list[str] = await page.evaluate(_PLACEHOLDERS)
    assert not stray, f"{what} shows unformatted values: {stray}"


def job_body(code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "diagram_export",
        "spec": {"text": "A job the Runboard's browser tests submit"},
        "code": {"files": [{"path": "jobs/main.py", "content": code}]},
        "created_by": "ui-tests",
    }
    body.update(overrides)
    return body


SLEEPER = "import time\nprint('working', flush=True)\ntime.sleep(600)\n"
"""Runs until cancelled."""


@dataclass
class Tenant:
    """One tenant of the stack, seen through its REST API with tokens of each role."""

    name: str
    stack: ServiceStack
    mint: Callable[[str, str], str]
    submitted: list[str] = field(default_factory=list)

    def token(self, role: str = "operator") -> str:
        return self.mint(self.name, role)

    def client(self, role: str = "operator") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.url("gateway"),
            headers={"Authorization": f"Bearer {self.token(role)}"},
            timeout=30,
        )

    async def submit(self, code: str, **overrides: Any) -> str:
        async with self.client() as api:
            response = await api.post("/api/v1/jobs/run", json=job_body(code, **overrides))
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        self.submitted.append(run_id)
        return run_id

    async def run(self, run_id: str) -> dict[str, Any]:
        async with self.client("viewer") as api:
            response = await api.get(f"/api/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def wait_for(
        self, run_id: str, *statuses: str, timeout: float = RUN_TIMEOUT
    ) -> dict[str, Any]:
        """The run's view once its status is one of ``statuses`` (fails at the deadline, or
        as soon as the run ends in another status)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.run(run_id)
            if view["status"] in statuses:
                return view
            if view["status"] in TERMINAL or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"run {run_id} is {view['status']}, not {statuses}: {view}")
            await asyncio.sleep(0.1)

    async def cancel_leftovers(self) -> None:
        """Cancel what the test left running: the executor's slots are shared by the module."""
        async with self.client() as api:
            for run_id in self.submitted:
                await api.post(f"/api/v1/runs/{run_id}/cancel")


@pytest.fixture(scope="session")
def mint() -> Iterator[Callable[[str, str], str]]:
    """Tokens for (tenant, role), from the gateway's CLI, minted once each."""
    minted: dict[tuple[str, str], str] = {}

    def token(tenant: str, role: str) -> str:
        if (tenant, role) not in minted:
            minted[tenant, role] = mint_dev_token(SECRET, tenant=tenant, role=role)
        return minted[tenant, role]

    yield token


@pytest.fixture
async def tenants(
    stack: ServiceStack, mint: Callable[[str, str], str]
) -> AsyncIterator[Callable[[str], Tenant]]:
    """``tenants(name)``: a tenant of this module's stack; its runs left running are cancelled
    at the end of the test."""
    made: list[Tenant] = []

    def make(name: str) -> Tenant:
        tenant = Tenant(name, stack, mint)
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        await tenant.cancel_leftovers()
