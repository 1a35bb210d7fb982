"""Workers announce themselves (a row per worker, renewed while it lives); files count their records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:00:00.000000

``workers``: so the API can say a job's queue has no live worker (``progress.waiting_for``) and list
live workers per queue (``GET /v1/workers``, ``/metrics``). ``files.record_count``: so a job is refused
at creation when its training file has too few records for the worker (NULL for files uploaded before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("record_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("record_count")
    op.drop_table("workers")
