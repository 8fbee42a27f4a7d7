"""The initial schema: every table of server/models.py, keyed by school.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 21:24:27.959164
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
        "accounts",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("login", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("kdf_params", sa.LargeBinary(), nullable=False),
        sa.Column("login_pk", sa.LargeBinary(), nullable=False),
        sa.Column("identity_x25519_pk", sa.LargeBinary(), nullable=False),
        sa.Column("identity_ed25519_pk", sa.LargeBinary(), nullable=False),
        sa.Column("bundle", sa.LargeBinary(), nullable=False),
        sa.Column("recovery_bundle", sa.LargeBinary(), nullable=False),
        sa.Column("recovery_auth_pk", sa.LargeBinary(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("left_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", "id"),
        sa.UniqueConstraint("school_id", "login"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor_user", sa.LargeBinary(), nullable=True),
        sa.Column("actor_device", sa.LargeBinary(), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_school_time", ["school_id", "at_ms"], unique=False)

    op.create_table(
        "challenges",
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("login", sa.String(length=200), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "class_pupils",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("class_id", sa.LargeBinary(), nullable=False),
        sa.Column("pupil_id", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "class_id", "pupil_id"),
    )
    op.create_table(
        "class_teachers",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("class_id", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "class_id", "user_id"),
    )
    op.create_table(
        "classes",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "id"),
    )
    op.create_table(
        "devices",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("cert", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_counter", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "id"),
    )
    op.create_table(
        "directory_versions",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "version"),
    )
    op.create_table(
        "envelope_pupils",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pupil_id", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "seq", "pupil_id"),
    )
    op.create_table(
        "envelope_recipients",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "seq", "kind", "key_id", "version"),
    )
    with op.batch_alter_table("envelope_recipients", schema=None) as batch_op:
        batch_op.create_index("ix_recipients_key", ["school_id", "kind", "key_id", "version", "seq"], unique=False)

    op.create_table(
        "envelopes",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("envelope_id", sa.LargeBinary(), nullable=False),
        sa.Column("concern_id", sa.LargeBinary(), nullable=False),
        sa.Column("author_device", sa.LargeBinary(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("device_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("server_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("padded_size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "seq"),
        sa.UniqueConstraint("school_id", "envelope_id"),
    )
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index("ix_envelopes_concern", ["school_id", "concern_id"], unique=False)

    op.create_table(
        "grants",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("reader_key_id", sa.LargeBinary(), nullable=False),
        sa.Column("reader_version", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.LargeBinary(), nullable=False),
        sa.Column("granter_device", sa.LargeBinary(), nullable=False),
        sa.Column("grant", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", "reader_key_id", "reader_version", "member_id"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index("ix_grants_member", ["school_id", "member_id"], unique=False)

    op.create_table(
        "invitations",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("login", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", "code_hash"),
    )
    op.create_table(
        "pupils",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("reader_key_id", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("left_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", "id"),
    )
    op.create_table(
        "reader_keys",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=80), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "id", "version"),
    )
    op.create_table(
        "school_counters",
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_id"),
    )
    op.create_table(
        "schools",
        sa.Column("id", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pepper", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.LargeBinary(), nullable=False),
        sa.Column("device_id", sa.LargeBinary(), nullable=False),
        sa.Column("device_pk", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.LargeBinary(), nullable=False),
        sa.Column("login", sa.String(length=200), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_in_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_account", ["school_id", "login", "at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_account")

    op.drop_table("sign_in_attempts")
    op.drop_table("sessions")
    op.drop_table("schools")
    op.drop_table("school_counters")
    op.drop_table("reader_keys")
    op.drop_table("pupils")
    op.drop_table("invitations")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_member")

    op.drop_table("grants")
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index("ix_envelopes_concern")

    op.drop_table("envelopes")
    with op.batch_alter_table("envelope_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_key")

    op.drop_table("envelope_recipients")
    op.drop_table("envelope_pupils")
    op.drop_table("directory_versions")
    op.drop_table("devices")
    op.drop_table("classes")
    op.drop_table("class_teachers")
    op.drop_table("class_pupils")
    op.drop_table("challenges")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_school_time")

    op.drop_table("audit_events")
    op.drop_table("accounts")
