"""Room for work that outlives the message that started it (an executor's attempts).

A concurrent consumer normally bounds its work by the handlers it runs at once. An executor's
handler only claims an attempt and returns, so that the dispatch is acknowledged as soon as
the claim is committed; the attempt itself runs on for minutes. :class:`Room` bounds that
work instead: the consumer fetches a message only when there is room, reserves a place for
it, and the handler *keeps* the place (:func:`keep_place`) for as long as its work runs. A
place the handler does not keep (a duplicate, a dead letter) is freed when the message is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field


class Room:
    def __init__(self, size: int, *, closed: bool = False) -> None:
        """``closed``: no place is given until :meth:`open` (an executor first counts the
        attempts it finds at start, so that new work never races the old)."""
        self.size = size
        self.used = 0
        self._changed = asyncio.Event()
        self._open = not closed

    def open(self) -> None:
        self._open = True
        self._changed.set()

    def take(self) -> None:
        """Take a place now, even past the size (work found at start is never refused)."""
        self.used += 1

    def free(self) -> None:
        self.used -= 1
        self._changed.set()

    async def wait_for_space(self, stopping: asyncio.Event) -> bool:
        """Until a place is free (True) or the service stops (False)."""
        while not self._open or self.used >= self.size:
            if stopping.is_set():
                return False
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait((changed, stop), return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stop.cancel()
        return not stopping.is_set()


@dataclass
class Reservation:
    """The place reserved for the message being handled."""

    room: Room
    kept: bool = False
    _freed: bool = field(default=False, repr=False)

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            self.room.free()


_current: ContextVar[Reservation | None] = ContextVar("controlroom_room_reservation", default=None)


def reserve(room: Room) -> Reservation:
    """Take a place for a message just fetched (in the consumer's loop)."""
    room.take()
    return Reservation(room)


def handling(reservation: Reservation) -> None:
    """Make ``reservation`` the one :func:`keep_place` keeps (in the message's own task)."""
    _current.set(reservation)


def keep_place() -> Callable[[], None]:
    """Called by a handler whose work goes on after it returns (after its transaction has
    committed: a rolled-back claim keeps nothing): the place stays taken until the returned
    function is called. Outside a consumer with a room, a place of no room."""
    reservation = _current.get()
    if reservation is None:
        return lambda: None
    reservation.kept = True
    return reservation.free
