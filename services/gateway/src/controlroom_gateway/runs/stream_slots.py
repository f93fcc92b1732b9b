"""How many live streams each tenant holds open in this process, and the cap on them.

A live stream holds a connection, a task and a wake-up for as long as its run lasts; without
a cap one tenant could open enough of them to starve everyone else. The count lives in each
API replica's memory, so with N replicas a tenant may hold N times the cap.
"""

from __future__ import annotations


class StreamSlot:
    """One open stream's place in its tenant's count; given back once, however it ends."""

    def __init__(self, slots: StreamSlots, tenant_id: str) -> None:
        self._slots = slots
        self._tenant_id = tenant_id
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._slots._release(self._tenant_id)


class StreamSlots:
    """At most ``limit`` open streams per tenant."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, tenant_id: str) -> StreamSlot | None:
        """A slot for one more stream of the tenant, or None when it has ``limit`` open."""
        count = self._open.get(tenant_id, 0)
        if count >= self.limit:
            return None
        self._open[tenant_id] = count + 1
        return StreamSlot(self, tenant_id)

    def _release(self, tenant_id: str) -> None:
        count = self._open[tenant_id] - 1
        if count:
            self._open[tenant_id] = count
        else:
            del self._open[tenant_id]
