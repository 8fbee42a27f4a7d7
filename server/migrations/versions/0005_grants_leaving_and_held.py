"""grants, leaving and rotation: pending grants, rotations due, held envelopes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pending_grants',
    sa.Column('school_id', sa.LargeBinary(), nullable=False),
    sa.Column('member_id', sa.LargeBinary(), nullable=False),
    sa.Column('purpose', sa.String(length=80), nullable=False),
    sa.Column('requested_ms', sa.BigInteger(), nullable=False),
    sa.Column('decided_ms', sa.BigInteger(), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_by', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('school_id', 'member_id', 'purpose')
    )
    op.create_table('rotations_due',
    sa.Column('school_id', sa.LargeBinary(), nullable=False),
    sa.Column('reader_key_id', sa.LargeBinary(), nullable=False),
    sa.Column('due_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'reader_key_id')
    )
    op.create_table('held_envelopes',
    sa.Column('school_id', sa.LargeBinary(), nullable=False),
    sa.Column('envelope_id', sa.LargeBinary(), nullable=False),
    sa.Column('author_device', sa.LargeBinary(), nullable=False),
    sa.Column('user_id', sa.LargeBinary(), nullable=False),
    sa.Column('concern_id', sa.LargeBinary(), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('device_time_ms', sa.BigInteger(), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('padded_size', sa.Integer(), nullable=False),
    sa.Column('digest', sa.LargeBinary(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('decided_ms', sa.BigInteger(), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_by', sa.LargeBinary(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('school_id', 'envelope_id')
    )
    op.create_index('ix_held_device', 'held_envelopes', ['school_id', 'author_device', 'counter'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_held_device', table_name='held_envelopes')
    op.drop_table('held_envelopes')
    op.drop_table('rotations_due')
    op.drop_table('pending_grants')
