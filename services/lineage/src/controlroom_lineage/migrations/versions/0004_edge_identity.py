"""lineage: one edge per (tenant, source, target, job) with its run references, an audit
trail, the dataset catalogue, OpenLineage deliveries; deleting lineage refused by trigger

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "lineage"
APPEND_ONLY = ("edges", "edge_runs", "edge_audit", "datasets")


EDGE_ID = """
    CREATE FUNCTION lineage.edge_id(tenant text, source text, target text, job text)
    RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT md5(format('%s:%s|%s:%s|%s:%s|%s:%s', length(tenant), tenant, length(source),
                          source, length(target), target, length(job), job))::uuid
    $$
"""


def upgrade() -> None:
    # An edge's id is its identity hashed (each part length-prefixed, so no two identities
    # read alike): a run finds its edges by primary key, without a lookup by four names.
    op.execute(EDGE_ID)
    _declared_io()
    _edges()
    _edge_runs_and_audit()
    _datasets()
    _openlineage_outbox()
    # "Never delete lineage edges" (the constitution, 2.4): enforced where no code path,
    # script or console session can go around it.
    op.execute(
        """
        CREATE FUNCTION lineage.refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'lineage.% is append-only: mark rows deleted instead', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE DELETE OR TRUNCATE ON lineage.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION lineage.refuse_delete()"
        )


def _declared_io() -> None:
    op.add_column("declared_io", sa.Column("job_name", sa.Text), schema=SCHEMA)
    op.add_column("declared_io", sa.Column("sources", ARRAY(sa.Text)), schema=SCHEMA)
    op.add_column("declared_io", sa.Column("targets", ARRAY(sa.Text)), schema=SCHEMA)
    op.add_column(
        "declared_io",
        sa.Column("recorded", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.add_column(
        "declared_io",
        sa.Column(
            "noted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.execute(
        """
        UPDATE lineage.declared_io SET
            job_name = job_type,
            sources = CASE WHEN source_entity IS NULL THEN '{}' ELSE ARRAY[source_entity] END,
            targets = CASE WHEN target_entity IS NULL THEN '{}' ELSE ARRAY[target_entity] END
        """
    )
    op.drop_column("declared_io", "source_entity", schema=SCHEMA)
    op.drop_column("declared_io", "target_entity", schema=SCHEMA)


def _edges() -> None:
    for column in (
        sa.Column("job_name", sa.Text),
        sa.Column("origin", sa.Text),
        sa.Column("run_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("latest_run_id", sa.Uuid),
        sa.Column("latest_run_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_by", sa.Text),
        sa.Column("delete_reason", sa.Text),
    ):
        op.add_column("edges", column, schema=SCHEMA)
    op.execute(
        """
        UPDATE lineage.edges SET
            job_name = COALESCE(job_type, 'manual'),
            origin = CASE WHEN run_id IS NULL THEN 'manual' ELSE 'run' END,
            run_count = CASE WHEN run_id IS NULL THEN 0 ELSE 1 END,
            latest_run_id = run_id,
            latest_run_at = CASE WHEN run_id IS NULL THEN NULL ELSE created_at END
        """
    )
    op.alter_column("edges", "job_name", nullable=False, schema=SCHEMA)
    op.alter_column("edges", "origin", nullable=False, schema=SCHEMA)
    op.drop_index("ix_edges_tenant_source", "edges", schema=SCHEMA)
    op.drop_index("ix_edges_tenant_target", "edges", schema=SCHEMA)
    op.create_index(
        "ix_edges_walk_down",
        "edges",
        ["tenant_id", "source_entity", "target_entity", "job_name"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_edges_walk_up",
        "edges",
        ["tenant_id", "target_entity", "source_entity", "job_name"],
        schema=SCHEMA,
    )


def _edge_runs_and_audit() -> None:
    op.create_table(
        "edge_runs",
        sa.Column("edge_id", sa.Uuid, primary_key=True),
        sa.Column("run_id", sa.Uuid, primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "edge_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("edge_id", sa.Uuid, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_edge_audit_edge", "edge_audit", ["edge_id", "id"], schema=SCHEMA)
    # Fold the edges of the former identity (one per run and pair) into one per (tenant,
    # source, target, job): the survivor keeps every run as a reference.
    op.execute(
        """
        CREATE TEMPORARY TABLE edge_fold ON COMMIT DROP AS
        SELECT id, run_id, created_at,
               lineage.edge_id(tenant_id, source_entity, target_entity, job_name) AS edge_id,
               first_value(id) OVER (
                   PARTITION BY tenant_id, source_entity, target_entity, job_name
                   ORDER BY created_at, id) AS survivor,
               deleted_at IS NULL AS live
        FROM lineage.edges
        """
    )
    op.execute(
        """
        INSERT INTO lineage.edge_runs (edge_id, run_id, recorded_at)
        SELECT edge_id, run_id, created_at FROM edge_fold WHERE run_id IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        """
        UPDATE lineage.edges e SET
            run_count = r.runs, latest_run_id = r.latest_run, latest_run_at = r.latest_at,
            deleted_at = CASE WHEN r.any_live THEN NULL ELSE e.deleted_at END
        FROM (
            SELECT survivor,
                   count(run_id) AS runs,
                   (array_agg(run_id ORDER BY created_at DESC, id DESC))[1] AS latest_run,
                   max(created_at) FILTER (WHERE run_id IS NOT NULL) AS latest_at,
                   bool_or(live) AS any_live
            FROM edge_fold GROUP BY survivor
        ) r
        WHERE e.id = r.survivor
        """
    )
    # The only rows this project ever removes, and before the append-only trigger exists.
    op.execute(
        "DELETE FROM lineage.edges WHERE id IN (SELECT id FROM edge_fold WHERE id <> survivor)"
    )
    op.execute(
        "UPDATE lineage.edges SET "
        "id = lineage.edge_id(tenant_id, source_entity, target_entity, job_name)"
    )
    op.execute(
        """
        INSERT INTO lineage.edge_audit (edge_id, tenant_id, action, actor, at)
        SELECT id, tenant_id, 'created',
               CASE WHEN origin = 'manual' THEN COALESCE(created_by, 'admin')
                    ELSE 'run:' || latest_run_id::text END,
               created_at
        FROM lineage.edges
        """
    )
    op.drop_constraint("uq_edges_run_source_target", "edges", schema=SCHEMA)
    op.drop_index("uq_edges_manual_live", "edges", schema=SCHEMA)
    op.drop_column("edges", "run_id", schema=SCHEMA)
    op.drop_column("edges", "job_type", schema=SCHEMA)


def _datasets() -> None:
    op.create_table(
        "datasets",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        # Byte order, so a name prefix is a range of the primary key.
        sa.Column("entity", sa.Text(collation="C"), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_produced_run_id", sa.Uuid),
        sa.Column("last_produced_job", sa.Text),
        sa.Column("last_produced_at", sa.DateTime(timezone=True)),
        sa.Column("last_consumed_run_id", sa.Uuid),
        sa.Column("last_consumed_job", sa.Text),
        sa.Column("last_consumed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.execute(
        """
        INSERT INTO lineage.datasets (tenant_id, entity, first_seen_at)
        SELECT tenant_id, entity, min(created_at) FROM (
            SELECT tenant_id, source_entity AS entity, created_at FROM lineage.edges
            UNION ALL
            SELECT tenant_id, target_entity, created_at FROM lineage.edges
        ) named GROUP BY tenant_id, entity
        """
    )


def _openlineage_outbox() -> None:
    op.create_table(
        "openlineage_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("run_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("failed_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_openlineage_outbox_pending",
        "openlineage_outbox",
        ["next_attempt_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
    )
    op.create_index(
        "ix_openlineage_outbox_run", "openlineage_outbox", ["run_id", "id"], schema=SCHEMA
    )


def downgrade() -> None:
    raise NotImplementedError("lineage 0004 folds edges into one per job: it cannot be undone")
