"""The schema of archcast 0.1 (graphs, platforms, measurements, sample aliases, meta).

Databases made before migrations existed hold exactly this schema: they are stamped 0001.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archcast_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "graphs",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=128), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("generator_version", sa.String(length=32), nullable=True),
        sa.Column("generator_config", sa.Text(), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("n_nodes", sa.Integer(), nullable=True),
        sa.Column("flops", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("ir_json", sa.LargeBinary(), nullable=True),
        sa.Column("onnx_zlib", sa.LargeBinary(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.create_index("ix_graphs_family_seed", "graphs", ["family", "seed"], unique=False)
    op.create_table(
        "platforms",
        sa.Column("platform_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=256), nullable=False),
        sa.Column("runtime", sa.String(length=64), nullable=False),
        sa.Column("runtime_version", sa.String(length=64), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("precision", sa.String(length=16), nullable=False),
        sa.Column("graph_opt_level", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform_id"),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("graph_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.String(length=32), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms_min", sa.Float(), nullable=True),
        sa.Column("latency_ms_median", sa.Float(), nullable=True),
        sa.Column("latency_ms_mean", sa.Float(), nullable=True),
        sa.Column("latency_ms_p90", sa.Float(), nullable=True),
        sa.Column("latency_ms_std", sa.Float(), nullable=True),
        sa.Column("latency_cv", sa.Float(), nullable=True),
        sa.Column("n_runs", sa.Integer(), nullable=True),
        sa.Column("warmup_runs", sa.Integer(), nullable=True),
        sa.Column("input_shapes", sa.Text(), nullable=True),
        sa.Column("node_profile", sa.Text(), nullable=True),
        sa.Column("session_s", sa.Float(), nullable=True),
        sa.Column("measure_s", sa.Float(), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_measurements_status"),
        sa.ForeignKeyConstraint(["graph_fingerprint"], ["graphs.fingerprint"]),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.platform_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_measurements_platform", "measurements", ["platform_id", "batch_size", "is_current"],
                    unique=False)
    op.create_index("uq_measurements_current", "measurements", ["graph_fingerprint", "platform_id", "batch_size"],
                    unique=True, sqlite_where=sa.text("is_current = 1"), postgresql_where=sa.text("is_current"))
    op.create_table(
        "sample_aliases",
        sa.Column("sample_key", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=128), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("generator_version", sa.String(length=32), nullable=False),
        sa.Column("generator_config", sa.Text(), nullable=False),
        sa.Column("graph_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["graph_fingerprint"], ["graphs.fingerprint"]),
        sa.PrimaryKeyConstraint("sample_key"),
    )


def downgrade() -> None:
    op.drop_table("sample_aliases")
    op.drop_index("uq_measurements_current", table_name="measurements")
    op.drop_index("ix_measurements_platform", table_name="measurements")
    op.drop_table("measurements")
    op.drop_table("platforms")
    op.drop_index("ix_graphs_family_seed", table_name="graphs")
    op.drop_table("graphs")
    op.drop_table("archcast_meta")
