"""API keys get scopes and an optional expiry; a revoked key's name may be reused

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 06:40:00.000000

Every key so far could do everything: existing keys become ``admin`` keys. The unique constraint on
``name`` becomes a unique index over the keys not revoked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    # Batch mode rebuilds the table on SQLite (which cannot drop a constraint); on PostgreSQL these are
    # plain ALTERs, so the change-notification trigger of 0005 stays.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.String(length=64), server_default="admin", nullable=False))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_api_keys_name", type_="unique")
    op.create_index("uq_api_keys_active_name", "api_keys", ["name"], unique=True,
                    postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.create_unique_constraint("uq_api_keys_name", ["name"])
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
