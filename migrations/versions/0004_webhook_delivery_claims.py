"""webhook deliveries that survive a crash: jobs.webhook_pending and jobs.webhook_claimed_until

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook_pending", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("webhook_claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_jobs_webhook_pending", ["webhook_pending"], unique=False)
    # Jobs that ended before this revision had their delivery; those still to end will have theirs.
    jobs = sa.table("jobs", sa.column("status", sa.String), sa.column("webhook_url", sa.String),
                    sa.column("webhook_pending", sa.Boolean))
    op.execute(jobs.update()
               .where(jobs.c.webhook_url.is_not(None), jobs.c.status.not_in(["succeeded", "failed", "cancelled"]))
               .values(webhook_pending=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_webhook_pending")
        batch.drop_column("webhook_claimed_until")
        batch.drop_column("webhook_pending")
