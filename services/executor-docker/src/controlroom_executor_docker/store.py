"""executor-docker's tables: the executor runtime's attempts and cancellations, its messaging."""

from __future__ import annotations

import sqlalchemy as sa

from controlroom_executor.store import executor_tables
from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="executor_docker")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
tables = executor_tables(metadata)
