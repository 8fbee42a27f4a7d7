"""signed directory: each version with its hash, signing keys and signer device

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

The signed directory (docs/PROTOCOL.md 13): each stored version keeps its hash, the key that signed it,
the key on file for the next version and the device that published it. The table was unused before
this revision, so it is made anew.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("directory_versions")
    op.create_table(
        "directory_versions",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("signing_pk", sa.LargeBinary(), nullable=False),
        sa.Column("next_signing_pk", sa.LargeBinary(), nullable=False),
        sa.Column("signer_device", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("directory_versions")
    op.create_table(
        "directory_versions",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "version"),
    )
