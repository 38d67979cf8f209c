"""Kernel profiles: per (graph, platform, batch size) the measured time of every kernel the runtime ran.

Additive: two new tables (``kernel_profiles``, ``kernel_times``); existing rows are untouched.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kernel_profiles",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("graph_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.String(length=32), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("pass_id", sa.String(length=64), nullable=True),
        sa.Column("n_passes", sa.Integer(), nullable=True),
        sa.Column("n_kernels", sa.Integer(), nullable=False),
        sa.Column("kernel_sum_us", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["graph_fingerprint"], ["graphs.fingerprint"]),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.platform_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_kernel_profiles_key", "kernel_profiles", ["graph_fingerprint", "platform_id", "batch_size"],
                    unique=True)
    op.create_table(
        "kernel_times",
        sa.Column("profile_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kernel", sa.String(length=256), nullable=False),
        sa.Column("op_type", sa.String(length=128), nullable=False),
        sa.Column("kernel_us", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["kernel_profiles.id"]),
        sa.PrimaryKeyConstraint("profile_id", "position"),
    )
    op.create_index("uq_kernel_times_name", "kernel_times", ["profile_id", "kernel"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_kernel_times_name", table_name="kernel_times")
    op.drop_table("kernel_times")
    op.drop_index("uq_kernel_profiles_key", table_name="kernel_profiles")
    op.drop_table("kernel_profiles")
