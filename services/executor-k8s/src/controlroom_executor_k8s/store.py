"""executor-k8s keeps only its outbox and inbox for now."""

from __future__ import annotations

import sqlalchemy as sa

from controlroom_runtime.messaging_tables import inbox_table, outbox_table

metadata = sa.MetaData(schema="executor_k8s")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
