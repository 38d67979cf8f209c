"""Index (platform_id, is_current, id): a page of one platform's current rows is read in id order,
not sorted (GET /v1/measurements?platform=...: 60 ms -> ~2 ms at 100k rows on SQLite).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:09:14.130265
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.create_index('ix_measurements_platform_current_id', ['platform_id', 'is_current', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_index('ix_measurements_platform_current_id')

