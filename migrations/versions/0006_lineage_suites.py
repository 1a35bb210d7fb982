"""A lineage's evaluation-suite files as one map, purpose -> file id, instead of a column per suite

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:00:00.000000

So a new evaluation suite needs no migration. The values move into the map on upgrade and back into
``reference_file_id`` / ``safety_file_id`` on downgrade (the map's other purposes have no column then).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = {"reference": "reference_file_id", "safety": "safety_file_id"}  # purpose -> the old column

models = sa.table("models", sa.column("id", sa.String), sa.column("suites", sa.JSON),
                  *(sa.column(c, sa.String) for c in COLUMNS.values()))


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("suites", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(models.c.id, *(models.c[c] for c in COLUMNS.values()))).mappings():
        chosen = {purpose: row[column] for purpose, column in COLUMNS.items() if row[column] is not None}
        connection.execute(models.update().where(models.c.id == row["id"]).values(suites=chosen))
    with op.batch_alter_table("models") as batch:
        batch.alter_column("suites", existing_type=sa.JSON(), nullable=False)
        for column in COLUMNS.values():
            batch.drop_constraint(f"fk_models_{column}_files", type_="foreignkey")
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        for column in COLUMNS.values():
            batch.add_column(sa.Column(column, sa.String(length=40), nullable=True))
            batch.create_foreign_key(f"fk_models_{column}_files", "files", [column], ["id"])
    connection = op.get_bind()
    for model_id, chosen in connection.execute(sa.select(models.c.id, models.c.suites)).all():
        values = {column: (chosen or {}).get(purpose) for purpose, column in COLUMNS.items()}
        connection.execute(models.update().where(models.c.id == model_id).values(**values))
    with op.batch_alter_table("models") as batch:
        batch.drop_column("suites")
