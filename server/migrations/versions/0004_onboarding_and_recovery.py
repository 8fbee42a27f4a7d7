"""onboarding and recovery: classes on invitations, the account an invitation made, confirmed TOTP

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invitations') as batch:
        batch.add_column(sa.Column('classes', sa.String(length=4000), nullable=False, server_default=''))
        batch.add_column(sa.Column('user_id', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('totp_confirmed_ms', sa.BigInteger(), nullable=True))
    # accounts made before this revision enrolled their authenticator by signing in with it
    op.execute(
        'UPDATE accounts SET totp_confirmed_ms = created_ms WHERE totp_secret IS NOT NULL AND totp_last_step > 0'
    )


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('totp_confirmed_ms')
    with op.batch_alter_table('invitations') as batch:
        batch.drop_column('user_id')
        batch.drop_column('classes')
