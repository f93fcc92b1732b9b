"""One transaction: state changes plus the events they produce, published after commit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.base import Message
from controlroom_runtime.outbox import Outbox, OutgoingMessage, outgoing

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self._outbox = outbox
        self.staged: list[OutgoingMessage] = []
        self.after_commit: list[Callable[[], Awaitable[None]]] = []

    async def emit(self, message: Message, *, subject: str | None = None) -> None:
        """Stage a message in this transaction; it is published only if the transaction commits."""
        await self.emit_model(
            message, message_id=message.event_id, subject=subject or message.subject
        )

    async def emit_model(self, message: BaseModel, *, message_id: UUID, subject: str) -> None:
        await self.emit_outgoing(outgoing(message, message_id=message_id, subject=subject))

    async def emit_outgoing(self, staged: OutgoingMessage) -> None:
        """Stage an already serialised message (one that needs headers of its own).

        It is written to the outbox just before commit, together with every other message of
        the transaction, in one statement: a consumer batch emitting three events per message
        makes one outbox insert, not three per message."""
        self.staged.append(staged)

    async def flush_outbox(self) -> None:
        """Write the staged messages to the outbox (the last statement before commit)."""
        if self.staged:
            await self._outbox.stage_many(self.session, self.staged)

    def on_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` after a successful commit (and after the publish)."""
        self.after_commit.append(callback)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *, await_publish: bool = True
) -> AsyncIterator[UnitOfWork]:
    """A transaction whose staged messages are published once it commits.

    ``await_publish=False``: the block's exit does not wait for the stream's acks, so a loop
    of transactions (admission passes) overlaps one's publishing with the next one's work.
    """
    async with sessions() as session:
        async with session.begin():
            uow = UnitOfWork(session, outbox)
            yield uow
            await uow.flush_outbox()
    if uow.staged:
        if await_publish:
            await outbox.publish(uow.staged)
        else:
            outbox.publish_soon(uow.staged)
    for callback in uow.after_commit:
        await callback()
