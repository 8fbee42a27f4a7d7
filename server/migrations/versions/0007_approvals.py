"""approvals: identity bindings, who asked for each widening, and no more pending grants

Every widening of who can read is approved in the signed directory itself (docs/PROTOCOL.md 13), so the
pending-grant table goes; accounts keep the binding of their X25519 identity key by their Ed25519 one; and
the server notes who asked for a widening, when and why, for the keyholder who decides.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_binding", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invited_by", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.String(length=500), nullable=False, server_default=""))
    op.create_table(
        "access_requests",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.LargeBinary(), nullable=True),
        sa.Column("requested_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("school_id", "subject"),
    )
    op.drop_table("pending_grants")


def downgrade() -> None:
    op.create_table(
        "pending_grants",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("member_id", sa.LargeBinary(), nullable=False),
        sa.Column("purpose", sa.String(length=80), nullable=False),
        sa.Column("requested_ms", sa.BigInteger(), nullable=False),
        sa.Column("decided_ms", sa.BigInteger(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", "member_id", "purpose"),
    )
    op.drop_table("access_requests")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("invited_by")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("identity_binding")
