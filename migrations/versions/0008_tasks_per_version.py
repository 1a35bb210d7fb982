"""tasks per version, and jobs' results files

A task row belongs to the version that learned it, so a task name can be learned again after its version
was rejected or rolled back past (a lineage is a tree of versions). jobs.result_files: the ids of a job's
results files (its loss curve as CSV).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("uq_tasks_model_name", type_="unique")
        batch.drop_constraint("uq_tasks_model_position", type_="unique")
        batch.create_unique_constraint("uq_tasks_model_version", ["model_id", "version"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("result_files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result_files")
    # Fails where a name was learned twice; such a lineage cannot be described by the old schema.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("uq_tasks_model_version", type_="unique")
        batch.create_unique_constraint("uq_tasks_model_position", ["model_id", "position"])
        batch.create_unique_constraint("uq_tasks_model_name", ["model_id", "name"])
