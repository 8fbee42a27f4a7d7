"""entry key grants: a concern's entry key versions re-sealed to a person named on it (docs/PROTOCOL.md 5.1)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_grants",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("concern_id", sa.LargeBinary(), nullable=False),
        sa.Column("entry_version", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.LargeBinary(), nullable=False),
        sa.Column("granter_device", sa.LargeBinary(), nullable=False),
        sa.Column("grant", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "concern_id", "entry_version", "member_id"),
    )
    with op.batch_alter_table("entry_grants", schema=None) as batch_op:
        batch_op.create_index("ix_entry_grants_member", ["school_id", "member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("entry_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_entry_grants_member")
    op.drop_table("entry_grants")
