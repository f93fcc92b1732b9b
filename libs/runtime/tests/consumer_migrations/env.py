"""Migrations of the throwaway service that test_consumer.py runs."""

import sqlalchemy as sa

from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_runtime.migrations import run_in_alembic_env

metadata = sa.MetaData(schema="consumer_test")
outbox_table(metadata)
inbox_table(metadata)

run_in_alembic_env(metadata)
