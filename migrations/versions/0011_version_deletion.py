"""deleting versions and lineages, retention, head-change webhooks, unevaluable tasks

model_versions.deletion ('deleting' while its checkpoint is being removed, then 'deleted'),
deleted_at and pinned; models.deleted_at (a lineage being removed), keep_last (its retention
policy) and webhook_url (where head changes are posted); head_history's webhook delivery state;
tasks.unevaluable_reason (its data was deleted).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("deletion", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_index("ix_model_versions_deletion", ["deletion"], unique=False)
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("keep_last", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(length=2048), nullable=True))
    # Head changes made before this revision were never meant to be posted anywhere.
    with op.batch_alter_table("head_history") as batch:
        batch.add_column(sa.Column("webhook_pending", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("webhook_deliveries", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("webhook_claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_head_history_webhook_pending", ["webhook_pending"], unique=False)
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("unevaluable_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("unevaluable_reason")
    with op.batch_alter_table("head_history") as batch:
        batch.drop_index("ix_head_history_webhook_pending")
        batch.drop_column("webhook_claimed_until")
        batch.drop_column("webhook_deliveries")
        batch.drop_column("webhook_pending")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("webhook_url")
        batch.drop_column("keep_last")
        batch.drop_column("deleted_at")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_index("ix_model_versions_deletion")
        batch.drop_column("pinned")
        batch.drop_column("deleted_at")
        batch.drop_column("deletion")
