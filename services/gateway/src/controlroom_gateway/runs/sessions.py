"""Sessions: a tenant's named groups of runs, and what their runs add up to.

The session row holds only what its creator said; its status and counts are derived from the
read model of its runs each time they are asked for, so they never lag behind the runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from controlroom_contracts.api import RunStatus
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import CancelRequested
from controlroom_contracts.resources import SessionIn, SessionPage, SessionView
from controlroom_contracts.responses import SessionCancelAccepted
from controlroom_gateway.auth import Principal
from controlroom_gateway.errors import NotFound
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.pagination import decode_cursor, encode_cursor
from controlroom_gateway.read_model.store import SHOWN, runs, sessions
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

Db = AsyncSession | AsyncConnection
SessionStatus = Literal["active", "completed", "failed"]
_TERMINAL = [s.value for s in RunStatus if s.is_terminal]


def aggregate_status(counts: Mapping[RunStatus, int]) -> SessionStatus:
    """``active`` while any run is unfinished or there is none yet; then ``completed`` if every
    run completed, else ``failed`` (a cancelled run counts against the session too)."""
    total = sum(counts.values())
    if total == 0 or any(n for status, n in counts.items() if not status.is_terminal):
        return "active"
    return "completed" if counts.get(RunStatus.completed, 0) == total else "failed"


def _view(row: Mapping[Any, Any], found: Mapping[RunStatus, int]) -> SessionView:
    counts = {status: found.get(status, 0) for status in RunStatus}
    return SessionView(
        session_id=row["session_id"],
        name=row["name"],
        description=row["description"],
        status=aggregate_status(counts),
        counts=counts,
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


async def _counts(
    db: Db, tenant_id: str, session_ids: Sequence[UUID]
) -> dict[UUID, dict[RunStatus, int]]:
    """Runs per status of each session, in one GROUP BY.

    Filtered by tenant as well: a run submitted over NATS is not checked against the sessions
    table, so another tenant's run may carry this session's id and must not be counted. An
    expired run is not counted either."""
    if not session_ids:
        return {}
    query = (
        sa.select(runs.c.session_id, runs.c.status, sa.func.count().label("n"))
        .where(runs.c.tenant_id == tenant_id, runs.c.session_id.in_(session_ids), SHOWN)
        .group_by(runs.c.session_id, runs.c.status)
    )
    counts: dict[UUID, dict[RunStatus, int]] = {}
    for row in await db.execute(query):
        counts.setdefault(row.session_id, {})[RunStatus(row.status)] = row.n
    return counts


async def create_session(gateway: Gateway, principal: Principal, body: SessionIn) -> SessionView:
    """Record a new, empty session of the caller's tenant."""
    values = {
        "session_id": uuid4(),
        "tenant_id": principal.tenant_id,
        "name": body.name,
        "description": body.description,
        "created_by": principal.subject,
        "created_at": utc_now(),
    }
    async with gateway.runtime.autocommit.connect() as db:
        await db.execute(sa.insert(sessions).values(**values))
    log.info(
        "session created",
        extra={"session_id": str(values["session_id"]), "tenant_id": principal.tenant_id},
    )
    return _view(values, {})


async def require_session(db: Db, tenant_id: str, session_id: UUID) -> None:
    """Raise ``NotFound`` unless the tenant has this session (one indexed one-row read)."""
    found = (
        await db.execute(
            sa.select(sa.literal(1)).where(
                sessions.c.session_id == session_id, sessions.c.tenant_id == tenant_id
            )
        )
    ).scalar()
    if found is None:
        raise NotFound(f"session {session_id} not found")


async def get_session(gateway: Gateway, principal: Principal, session_id: UUID) -> SessionView:
    """The session with its runs' counts; another tenant's session is not found."""
    tenant_id = principal.tenant_id
    async with gateway.runtime.autocommit.connect() as db:
        row = (
            await db.execute(
                sa.select(sessions).where(
                    sessions.c.session_id == session_id, sessions.c.tenant_id == tenant_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"session {session_id} not found")
        counts = await _counts(db, tenant_id, [session_id])
    return _view(row._mapping, counts.get(session_id, {}))


async def list_sessions(
    gateway: Gateway, principal: Principal, *, limit: int, cursor: str | None
) -> SessionPage:
    """Newest first; keyset pagination on (created_at, session_id) so pages never shift."""
    tenant_id = principal.tenant_id
    s = sessions
    async with gateway.runtime.autocommit.connect() as db:
        query = sa.select(s).where(s.c.tenant_id == tenant_id)
        if cursor is not None:
            query = query.where(
                sa.tuple_(s.c.created_at, s.c.session_id) < sa.tuple_(*decode_cursor(cursor))
            )
        query = query.order_by(s.c.created_at.desc(), s.c.session_id.desc()).limit(limit + 1)
        rows = [row._mapping for row in await db.execute(query)]
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["session_id"])
        counts = await _counts(db, tenant_id, [row["session_id"] for row in rows])
    items = [_view(row, counts.get(row["session_id"], {})) for row in rows]
    return SessionPage(items=items, next_cursor=next_cursor)


async def cancel_session(
    gateway: Gateway, principal: Principal, session_id: UUID
) -> SessionCancelAccepted:
    """Request cancellation of every unfinished run of the session; says how many that was.

    Runs that already finished are left alone (no 409 as for one run: a session is cancelled
    whatever some of its runs did). A run submitted into the session after this commits is not
    affected."""
    runtime = gateway.runtime
    async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
        await require_session(uow.session, principal.tenant_id, session_id)
        # The lock request_cancel takes, in run_id order like the projector's, so they never
        # deadlock.
        unfinished = (
            (
                await uow.session.execute(
                    sa.select(runs.c.run_id)
                    .where(
                        runs.c.tenant_id == principal.tenant_id,
                        runs.c.session_id == session_id,
                        runs.c.status.not_in(_TERMINAL),
                    )
                    .order_by(runs.c.run_id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for run_id in unfinished:
            await uow.emit(
                CancelRequested(
                    tenant_id=principal.tenant_id, run_id=run_id, requested_by=principal.subject
                )
            )
            log.info(
                "cancel requested", extra={"run_id": str(run_id), "session_id": str(session_id)}
            )
    return SessionCancelAccepted(session_id=session_id, cancel_requested=len(unfinished))
