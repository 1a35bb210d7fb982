"""inference servers: the inference processes that registered, where to reach them (and the token they
require), and what they hold

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_servers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("loaded", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_servers")),
    )
    op.create_index(op.f("ix_inference_servers_heartbeat_at"), "inference_servers", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inference_servers_heartbeat_at"), table_name="inference_servers")
    op.drop_table("inference_servers")
