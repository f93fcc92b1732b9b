"""The chaos suite: each module breaks a whole Control Room of its own and checks the ledger.

Results go to ``docs/reliability.md``, regenerated when the session ends from the scenarios
that ran (rows of the others are kept with the date they last ran). The long scenarios are
marked ``chaos_long``: ``make test`` leaves them out, ``make test-chaos`` runs everything.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controlroom_devstack.chaos import ChaosStack
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.reliability_report import ReportRow, merge, parse, render

SECRET = "chaos-secret-chaos-secret-chaos-secret"
REPORT = Path("docs") / "reliability.md"


@dataclass
class Results:
    """What the scenarios of this session measured, for the report."""

    rows: list[ReportRow] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)

    def record(self, row: ReportRow, details: str | None = None) -> None:
        self.rows = [r for r in self.rows if r.scenario != row.scenario] + [row]
        if details:
            self.details[row.scenario] = details


RESULTS = pytest.StashKey[Results]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = Results()


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest) -> Results:
    return request.config.stash[RESULTS]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Regenerate docs/reliability.md from this session's scenarios and the earlier rows."""
    found = session.config.stash.get(RESULTS, None)
    if found is None or not found.rows:
        return
    path = session.config.rootpath / REPORT
    earlier_rows, earlier_details = parse(path.read_text()) if path.exists() else ([], {})
    today = datetime.now(UTC).date().isoformat()
    rows = merge(earlier_rows, found.rows, today)
    details = {**earlier_details, **found.details}
    args = shlex.join(session.config.invocation_params.args) or "(testpaths)"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        render(
            rows,
            details,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            machine=f"{os.cpu_count()} cores ({sys.platform})",
            command=f"pytest {args}",
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed scenario, attach the tail of every service log of its stack."""
    report = yield
    chaos = getattr(item, "funcargs", {}).get("chaos")
    if report.failed and isinstance(chaos, ChaosStack):
        for name, tail in chaos.log_tails():
            report.sections.append((f"service log {name}", tail))
    return report


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver()
    await server.start()
    yield server
    await server.stop()


def token(tenant: str, role: str = "operator") -> str:
    from controlroom_gateway.auth import mint_token

    return mint_token(SECRET, tenant_id=tenant, subject="chaos", role=role, ttl_seconds=6 * 3600)
