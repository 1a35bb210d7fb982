"""base scores kept once per (base, suite data); per-example answers of each accuracy-matrix cell

base_scores: a suite's results on a base model, keyed by the sha256 of the base's weights and of the
suite's records, so a second lineage on the same base file reuses them; evaluations.examples: each
held-out example's prompt, reference and the version's answer behind a matrix cell.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("base_sha256", sa.String(length=64), nullable=False),
        sa.Column("suite", sa.String(length=64), nullable=False),
        sa.Column("data_sha256", sa.String(length=64), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_scores")),
        sa.UniqueConstraint("base_sha256", "suite", "data_sha256", name="uq_base_scores_key"),
    )
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("examples", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("examples")
    op.drop_table("base_scores")
