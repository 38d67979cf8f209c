"""archcast collect: thread CPU time, pass id, canary speed index and row role on measurements.

Additive: six nullable columns; rows written before keep NULL (no CPU time, no pass, a model).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (("cpu_ms_min", sa.Float()), ("cpu_ms_median", sa.Float()), ("cpu_cv", sa.Float()),
            ("pass_id", sa.String(length=64)), ("speed_index", sa.Float()), ("role", sa.String(length=16)))


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
