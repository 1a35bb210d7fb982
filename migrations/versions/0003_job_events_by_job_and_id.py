"""job events indexed by (job_id, id): a page of a job's events without sorting all of them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 16:55:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_events") as batch:
        batch.create_index("ix_job_events_job_id_id", ["job_id", "id"], unique=False)
        batch.drop_index("ix_job_events_job_id")


def downgrade() -> None:
    with op.batch_alter_table("job_events") as batch:
        batch.create_index("ix_job_events_job_id", ["job_id"], unique=False)
        batch.drop_index("ix_job_events_job_id_id")
