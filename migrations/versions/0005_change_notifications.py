"""PostgreSQL NOTIFYs when jobs, job events or API keys change, so each API process can cache its reads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:40:00.000000

The payload names what changed: ``job:<id>``, ``events:<job id>``, ``keys``, or ``*`` (a table was
truncated: drop everything). Triggers fire for every writer (the API, workers, the CLI, a manual UPDATE),
and PostgreSQL delivers the notification when the writing transaction commits. SQLite has no NOTIFY:
there the API always reads the database.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CHANNEL = "sculpt_changes"
TRIGGERS = (  # (table, payload prefix, column naming the changed thing or None for the whole table)
    ("jobs", "job:", "id"),
    ("job_events", "events:", "job_id"),
    ("api_keys", "keys", None),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION sculpt_notify_change() RETURNS trigger AS $$
        DECLARE
            changed jsonb;
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN
                PERFORM pg_notify('{CHANNEL}', TG_ARGV[0]);
                RETURN NULL;
            END IF;
            IF TG_OP = 'DELETE' THEN changed := to_jsonb(OLD); ELSE changed := to_jsonb(NEW); END IF;
            PERFORM pg_notify('{CHANNEL}', TG_ARGV[0] || (changed ->> TG_ARGV[1]));
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
    """)
    for table, prefix, column in TRIGGERS:
        if column is None:
            op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION sculpt_notify_change('{prefix}')")
            continue
        op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sculpt_notify_change('{prefix}', '{column}')")
        op.execute(f"CREATE TRIGGER {table}_notify_truncate AFTER TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION sculpt_notify_change('*')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, _prefix, column in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
        if column is not None:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS sculpt_notify_change()")
