"""archcast serve: hashed API tokens, idempotent pushes (measurements.push_id), history by graph.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.CheckConstraint("scope IN ('read', 'write')", name="ck_api_tokens_scope"),
        sa.PrimaryKeyConstraint("token_sha256"),
    )
    op.create_index("uq_api_tokens_name", "api_tokens", ["name"], unique=True)
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("push_id", sa.String(length=64), nullable=True))
    op.create_index("uq_measurements_push_id", "measurements", ["push_id"], unique=True)
    op.create_index("ix_measurements_graph", "measurements", ["graph_fingerprint"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_measurements_graph", table_name="measurements")
    op.drop_index("uq_measurements_push_id", table_name="measurements")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("push_id")
    op.drop_index("uq_api_tokens_name", table_name="api_tokens")
    op.drop_table("api_tokens")
