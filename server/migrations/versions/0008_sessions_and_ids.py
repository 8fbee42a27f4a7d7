"""sessions and ids: one hand-over per revoked device, and account and device ids unique across schools

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    for table in ('accounts', 'devices'):
        shared = f'SELECT count(*) FROM (SELECT id FROM {table} GROUP BY id HAVING count(*) > 1) s'
        if conn.execute(sa.text(shared)).scalar():
            raise RuntimeError(
                f'{table}: some ids are used by two schools, which this revision forbids; see docs/OPERATIONS.md, '
                '"Database schema", before upgrading'
            )
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('handed_over_ms', sa.BigInteger(), nullable=True))
        batch.create_index('ux_devices_id', ['id'], unique=True)
    with op.batch_alter_table('accounts') as batch:
        batch.create_index('ux_accounts_id', ['id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_index('ux_accounts_id')
    with op.batch_alter_table('devices') as batch:
        batch.drop_index('ux_devices_id')
        batch.drop_column('handed_over_ms')
