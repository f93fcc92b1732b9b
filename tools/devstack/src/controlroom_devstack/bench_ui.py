"""``make bench``, the Runboard (issue [7]) in headless chromium through Playwright, against a
whole system of its own (local-process backend):

  * status change -> board: trivial runs submitted one at a time to a board open in the
    browser; for each, from the scheduler's decision (the ``occurred_at`` it stamped on the
    run's ``completed`` history event) to the moment the browser changed the run's card to
    ``data-status="completed"`` (a MutationObserver's ``performance.timeOrigin +
    performance.now()``; one machine, one clock);
  * first paint: the board loaded cold (a fresh browser context each time) for a tenant with
    10,000 runs in the gateway's read model: first contentful paint (PerformanceObserver
    ``paint``) and ``document.body.dataset.firstRunsPainted`` (the first page of runs in the
    DOM), both from navigation start;
  * the screenshots in docs/: ``runboard-board.png`` (runs in several lanes and statuses) and
    ``runboard-run.png`` (a completed run with its logs and artifacts).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from playwright.async_api import Browser, Page, async_playwright

from controlroom_devstack.bench_report import Row, median, ms, pct
from controlroom_devstack.infra import NatsServer, Postgres, free_port
from controlroom_devstack.stack import ServiceStack, StackConfig, mint_dev_token

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[4] / "docs"
LIVE_TARGET = "< 300 ms (issue [7])"
PAINT_TARGET = "< 1 s (issue [7])"
BOARD_TENANT = "bench-ui"
ESTATE_TENANT = "bench-ui-estate"
SHOWCASE_TENANT = "acme-analytics"
SHOWCASE_CAP = 2
"""The showcase tenant runs two at a time, so its third long run waits (and says why)."""
WARM_UP = 5
RUN_TIMEOUT_MS = 60_000

OBSERVE_COMPLETED = """() => {
  window.__benchCompleted = {};
  const seen = (el, now) => {
    if (el.dataset.status !== 'completed') return;
    const id = el.dataset.testid.slice('run-'.length);
    if (!(id in window.__benchCompleted)) window.__benchCompleted[id] = now;
  };
  const cards = '[data-testid^="run-"][data-status]';
  new MutationObserver(records => {
    const now = performance.timeOrigin + performance.now();
    for (const record of records) {
      const nodes = record.type === 'attributes' ? [record.target] : [...record.addedNodes];
      for (const node of nodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        if (node.matches(cards)) seen(node, now);
        for (const card of node.querySelectorAll(cards)) seen(card, now);
      }
    }
  }).observe(document.querySelector('[data-testid="page-runs"]'), {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'],
  });
}"""

FIRST_CONTENTFUL_PAINT = """() => new Promise(resolve => {
  new PerformanceObserver((list, observer) => {
    const entry = list.getEntries().find(e => e.name === 'first-contentful-paint');
    if (entry) { observer.disconnect(); resolve(entry.startTime); }
  }).observe({type: 'paint', buffered: true});
})"""

TRIVIAL = "print('ok')\n"
SLEEPER = "import time\nprint('waiting for data', flush=True)\ntime.sleep(600)\n"
REPORT = (
    "import json, os\n"
    "print('reading raw.orders: 1,204 rows', flush=True)\n"
    "print('dropped 3 rows without a customer', flush=True)\n"
    "os.makedirs('output', exist_ok=True)\n"
    "open('output/orders.csv', 'w').write('day,orders\\n2026-12-01,412\\n2026-12-02,789\\n')\n"
    "json.dump({'rows': 1201}, open('output/summary.json', 'w'))\n"
    "print('wrote gold.orders_daily', flush=True)\n"
)


def ui(
    base: Path,
    postgres: Postgres,
    secret: str,
    runs: int = 50,
    loads: int = 10,
    estate: int = 10_000,
) -> tuple[list[Row], list[str]]:
    """Start a system of its own, measure, stop it; skipped (saying so) without chromium."""
    if not CHROMIUM.exists():
        return [], [f"ui: skipped, {CHROMIUM} is missing (apt-get install chromium)."]
    postgres.create_database("bench_ui")
    nats_server = NatsServer(base / "nats-ui", log_file=base / "nats-ui.log")
    stack = ServiceStack(
        StackConfig(
            nats_url=nats_server.url,
            database_url=postgres.url("bench_ui"),
            jwt_secret=secret,
            logs_dir=base / "logs-ui",
            workdir=base / "work-ui",
            gateway_port=free_port(),
            extra_env={
                "CONTROLROOM_LOG_LEVEL": "WARNING",
                "CONTROLROOM_JOB_BACKEND": "local",
                "CONTROLROOM_TENANT_LIMITS": json.dumps({SHOWCASE_TENANT: SHOWCASE_CAP}),
            },
        )
    )
    try:
        nats_server.start()
        stack.start()
        tokens = {
            tenant: mint_dev_token(secret, tenant=tenant)
            for tenant in (BOARD_TENANT, ESTATE_TENANT, SHOWCASE_TENANT)
        }
        return asyncio.run(_measure(stack, postgres.url("bench_ui"), tokens, runs, loads, estate))
    finally:
        stack.stop()
        nats_server.stop()


async def _measure(
    stack: ServiceStack,
    database_url: str,
    tokens: dict[str, str],
    runs: int,
    loads: int,
    estate: int,
) -> tuple[list[Row], list[str]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            rows, notes = await _live_board(browser, stack, tokens[BOARD_TENANT], runs)
            r, n = await _first_paint(
                browser, stack, database_url, tokens[ESTATE_TENANT], loads, estate
            )
            rows, notes = rows + r, notes + n
            notes += await _screenshots(browser, stack, tokens[SHOWCASE_TENANT])
        finally:
            await browser.close()
    return rows, notes


def _client(stack: ServiceStack, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.url("gateway"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _job(code: str, n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "diagram_export",
        "spec": {"text": f"bench ui {n}"},
        "code": {"files": [{"path": "main.py", "content": code}]},
        "created_by": "bench",
    }
    body.update(overrides)
    return body


async def _submit(api: httpx.AsyncClient, code: str, n: int, **overrides: Any) -> str:
    response = await api.post("/api/v1/jobs/run", json=_job(code, n, **overrides))
    response.raise_for_status()
    run_id: str = response.json()["run_id"]
    return run_id


async def _signed_in_page(browser: Browser, stack: ServiceStack, token: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{stack.url('gateway')}/ui/#/signin?token={token}")
    await page.wait_for_selector('[data-testid="live"][data-state="open"]', timeout=30_000)
    return page


async def _completed_at(api: httpx.AsyncClient, run_id: str) -> float:
    """When the scheduler decided the run completed (epoch seconds)."""
    response = await api.get(f"/api/v1/runs/{run_id}/events", params={"limit": 500})
    response.raise_for_status()
    for event in response.json()["items"]:
        if event["event_type"] == "completed":
            return datetime.fromisoformat(event["occurred_at"]).timestamp()
    raise RuntimeError(f"run {run_id} has no completed event: {response.text}")


async def _live_board(
    browser: Browser, stack: ServiceStack, token: str, runs: int
) -> tuple[list[Row], list[str]]:
    page = await _signed_in_page(browser, stack, token)
    await page.evaluate(OBSERVE_COMPLETED)
    latencies: list[float] = []
    async with _client(stack, token) as api:
        for n in range(WARM_UP + runs):
            run_id = await _submit(api, TRIVIAL, n)
            await page.wait_for_function(
                "id => window.__benchCompleted[id] !== undefined",
                arg=run_id,
                timeout=RUN_TIMEOUT_MS,
            )
            applied_ms: float = await page.evaluate("id => window.__benchCompleted[id]", run_id)
            decided = await _completed_at(api, run_id)
            if n >= WARM_UP:
                latencies.append(applied_ms / 1000 - decided)
    await page.context.close()
    scenario = f"status change -> board, {runs} trivial runs one at a time"
    metric = "scheduler decision -> card completed"
    rows = [
        Row(scenario, f"p50 {metric}", LIVE_TARGET, ms(median(latencies))),
        Row(scenario, f"p99 {metric}", LIVE_TARGET, ms(pct(latencies, 99))),
    ]
    notes = [
        f"status change -> board: from the completed event's occurred_at (stamped by the "
        f"scheduler) through the gateway's projector, the tenant's SSE stream and the board's "
        f"DOM update, read by a MutationObserver in the page; fastest {ms(min(latencies))}, "
        f"slowest {ms(max(latencies))}; {WARM_UP} runs before them not counted."
    ]
    return rows, notes


async def _fill_estate(database_url: str, tenant: str, count: int) -> None:
    """``count`` ended runs straight into the gateway's read model, over four lanes, newest
    every six seconds back from now."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            """
            INSERT INTO gateway.runs (
                run_id, tenant_id, job_type, status, created_by, created_at, queued_at,
                started_at, completed_at, attempt, lane, exit_code, failure_reason, error,
                sequence, executor_kind)
            SELECT gen_random_uuid(), $1, 'diagram_export',
                   CASE WHEN i % 10 < 7 THEN 'completed' WHEN i % 10 < 9 THEN 'failed'
                        ELSE 'cancelled' END,
                   'bench', at, at, at + interval '1 second', at + interval '3 seconds', 1,
                   (ARRAY['A', 'B', 'C', 'D'])[i % 4 + 1],
                   CASE WHEN i % 10 < 7 THEN 0 WHEN i % 10 < 9 THEN 3 END,
                   CASE WHEN i % 10 BETWEEN 7 AND 8 THEN 'exit_code' END,
                   CASE WHEN i % 10 BETWEEN 7 AND 8 THEN 'bad input' END,
                   4, 'local'
            FROM generate_series(1, $2) AS i,
                 LATERAL (SELECT now() - make_interval(secs => i * 6) AS at) AS t
            """,
            tenant,
            count,
        )
        await conn.execute("ANALYZE gateway.runs")
    finally:
        await conn.close()


MILESTONES = """() => {
  const entries = performance.getEntriesByType('resource');
  const first = (test, at = 'responseEnd') => {
    const found = entries.filter(e => test(e.name)).map(e => e[at]);
    return found.length ? Math.min(...found) : null;
  };
  const last = test => Math.max(0, ...entries.filter(e => test(e.name)).map(e => e.responseEnd));
  return {
    'scripts and styles loaded': last(name => /\\.(js|css)$/.test(name)),
    'GET /runs sent': first(name => name.includes('/api/v1/runs?'), 'startTime'),
    'GET /runs answered': first(name => name.includes('/api/v1/runs?')),
    'GET /limits answered': first(name => name.includes('/api/v1/limits')),
  };
}"""
"""When what the board waits for arrived, ms from navigation start (Resource Timing)."""


@dataclass(frozen=True)
class Load:
    first_contentful_paint: float
    runs_painted: float
    milestones: dict[str, float | None]


async def _cold_load(browser: Browser, stack: ServiceStack, token: str) -> Load:
    """One load of the board, in a browser context of its own (no cache, no open connection);
    times in ms from navigation start."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(
        f"try {{ localStorage.setItem('controlroom.token', {json.dumps(token)}) }} catch {{}}"
    )
    try:
        page = await context.new_page()
        await page.goto(f"{stack.url('gateway')}/ui/#/runs")
        await page.wait_for_function(
            "() => document.body && document.body.dataset.firstRunsPainted !== undefined",
            timeout=30_000,
        )
        runs_painted = float(await page.evaluate("Number(document.body.dataset.firstRunsPainted)"))
        painted = float(await page.evaluate(FIRST_CONTENTFUL_PAINT))
        if await page.locator('[data-testid^="run-"][data-status]').count() == 0:
            raise RuntimeError("the board painted no run")
        return Load(painted, runs_painted, await page.evaluate(MILESTONES))
    finally:
        await context.close()


async def _first_paint(
    browser: Browser, stack: ServiceStack, database_url: str, token: str, loads: int, count: int
) -> tuple[list[Row], list[str]]:
    await _fill_estate(database_url, ESTATE_TENANT, count)
    async with _client(stack, token) as api:
        api_times: dict[str, list[float]] = {"runs": [], "runs/counts": []}
        for _ in range(10):
            for path, times in api_times.items():
                t0 = time.perf_counter()
                response = await api.get(f"/api/v1/{path}", params={"limit": 50})
                times.append(time.perf_counter() - t0)
                response.raise_for_status()
    await _cold_load(browser, stack, token)  # the gateway's first queries of this tenant
    measured = [await _cold_load(browser, stack, token) for _ in range(loads)]
    paints = [m.first_contentful_paint / 1000 for m in measured]
    runs_painted = [m.runs_painted / 1000 for m in measured]
    milestones = ", ".join(
        f"{name} {ms(median(values) / 1000)}"
        for name in measured[0].milestones
        if (values := [v for m in measured if (v := m.milestones[name]) is not None])
    )
    scenario = f"board first paint, {count:,} runs in the tenant, {loads} cold loads"
    first_page = "first page of runs in the DOM"
    rows = [
        Row(scenario, "p50 first contentful paint", PAINT_TARGET, ms(median(paints))),
        Row(scenario, "p99 first contentful paint", PAINT_TARGET, ms(pct(paints, 99))),
        Row(scenario, f"p50 {first_page}", PAINT_TARGET, ms(median(runs_painted))),
        Row(scenario, f"p99 {first_page}", PAINT_TARGET, ms(pct(runs_painted, 99))),
    ]
    notes = [
        f"board first paint: each load in a fresh browser context (empty cache), token already "
        f"stored, from navigation start; one load before them not counted; medians from "
        f"navigation start: {milestones}; the API alone for that tenant: GET /runs?limit=50 "
        f"p50 {ms(median(api_times['runs']))}, GET /runs/counts p50 "
        f"{ms(median(api_times['runs/counts']))}."
    ]
    return rows, notes


async def _wait_status(api: httpx.AsyncClient, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while True:
        view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
        if view["status"] in statuses:
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} stayed {view['status']}, not {statuses}")
        await asyncio.sleep(0.1)


async def _screenshots(browser: Browser, stack: ServiceStack, token: str) -> list[str]:
    """A board with runs in every lane and status, and a completed run's page."""
    async with _client(stack, token) as api:
        report = await _submit(
            api,
            REPORT,
            0,
            name="orders_daily",
            spec={
                "text": "Aggregate the day's orders",
                "inputs": {"source": "raw.orders", "target": "gold.orders_daily"},
            },
        )
        done = [report] + [
            await _submit(api, TRIVIAL, n, lane=lane) for n, lane in enumerate("BC", 1)
        ]
        failed = await _submit(
            api,
            "import sys\nprint('no such table', file=sys.stderr)\nsys.exit(3)\n",
            3,
            retry={"max_attempts": 1},
        )
        for run_id in done:
            await _wait_status(api, run_id, "completed")
        await _wait_status(api, failed, "failed")
        cancelled = await _submit(api, SLEEPER, 4, lane="D")
        await _wait_status(api, cancelled, "running")
        (await api.post(f"/api/v1/runs/{cancelled}/cancel")).raise_for_status()
        await _wait_status(api, cancelled, "cancelled")
        sleepers = [await _submit(api, SLEEPER, n, lane=lane) for n, lane in ((5, "B"), (6, "D"))]
        for run_id in sleepers:
            await _wait_status(api, run_id, "running")
        waiting = await _submit(api, SLEEPER, 7, lane="C")
        deadline = time.monotonic() + 30
        while (await api.get(f"/api/v1/runs/{waiting}")).json()["queue_reason"] is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the showcase's third long run has no queue reason")
            await asyncio.sleep(0.1)
        try:
            page = await _signed_in_page(browser, stack, token)
            reason = f'[data-testid="run-{waiting}"] [data-testid="queue-reason"]'
            await page.wait_for_selector(reason)
            await page.wait_for_selector(f'[data-testid="run-{failed}"][data-status="failed"]')
            DOCS.mkdir(exist_ok=True)
            # The focus ring the router puts on the heading is for keyboards, not for docs.
            await page.evaluate("document.activeElement?.blur()")
            await page.screenshot(path=str(DOCS / "runboard-board.png"), full_page=True)
            await page.evaluate("id => { location.hash = `#/runs/${id}` }", report)
            await page.wait_for_selector('[data-testid="artifacts"] >> text=output/orders.csv')
            await page.wait_for_function(
                "() => document.querySelector('[data-testid=logs]')?.textContent"
                ".includes('wrote gold.orders_daily')"
            )
            await page.evaluate("document.activeElement?.blur()")
            await page.screenshot(path=str(DOCS / "runboard-run.png"), full_page=True)
            await page.context.close()
        finally:
            for run_id in (*sleepers, waiting):
                await api.post(f"/api/v1/runs/{run_id}/cancel")
    return [
        f"ui: screenshots written to {DOCS / 'runboard-board.png'} and {DOCS / 'runboard-run.png'}."
    ]
