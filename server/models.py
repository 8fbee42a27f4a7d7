"""The server's tables (SQLModel). Every table is keyed by school, ready for sharding by school.

The server stores only what docs/ARCHITECTURE.md's "What the server sees" allows: ids, public keys, sealed
objects it cannot open, and envelope metadata. Byte columns hold public keys, signatures and
ciphertext; nothing here is a secret of a school's, except the TOTP secrets the server itself needs.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "School",
    "SchoolCounter",
    "Account",
    "Invitation",
    "Device",
    "Session",
    "SignInAttempt",
    "Challenge",
    "SchoolClass",
    "Pupil",
    "ClassPupil",
    "ClassTeacher",
    "ReaderKey",
    "Grant",
    "EntryGrant",
    "DirectoryVersion",
    "Envelope",
    "EnvelopeRecipient",
    "EnvelopePupil",
    "AuditEvent",
    "RosterRecord",
    "AccessRequest",
    "RotationDue",
    "HeldEnvelope",
    "ROLES",
    "READING_ROLES",
    "SECOND_FACTOR_ROLES",
]

ROLES = ("contributor", "teacher", "sen", "safeguarding", "admin")
READING_ROLES = frozenset({"teacher", "sen", "safeguarding"})
SECOND_FACTOR_ROLES = READING_ROLES | {"admin"}  # sign in with a TOTP code too


def _bytes(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(LargeBinary, nullable=nullable)


class School(SQLModel, table=True):
    __tablename__ = "schools"
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    name: str = Field(max_length=200)
    pepper: bytes = Field(sa_column=_bytes())  # makes decoy KDF parameters for unknown logins
    created_ms: int = Field(sa_type=BigInteger)


class SchoolCounter(SQLModel, table=True):
    """The next envelope sequence number of a school; locked and bumped inside each write."""

    __tablename__ = "school_counters"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    last_seq: int = Field(default=0, sa_type=BigInteger)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    # the id is the client's choice (it is in the device certificate): one school's can never be another's
    __table_args__ = (UniqueConstraint("school_id", "login"), Index("ux_accounts_id", "id", unique=True))
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    login: str = Field(max_length=200)
    display_name: str = Field(max_length=200)
    roles: str = Field(max_length=200)  # space-separated, from ROLES
    kdf_params: bytes = Field(sa_column=_bytes())
    login_pk: bytes = Field(sa_column=_bytes())
    identity_x25519_pk: bytes = Field(sa_column=_bytes())
    identity_ed25519_pk: bytes = Field(sa_column=_bytes())
    identity_binding: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))  # PROTOCOL 2.7
    bundle: bytes = Field(sa_column=_bytes())
    recovery_bundle: bytes = Field(sa_column=_bytes())
    recovery_auth_pk: bytes = Field(sa_column=_bytes())
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_last_step: int = Field(
        default=0, sa_type=BigInteger
    )  # a one-time code is accepted once: no replay within its window
    totp_confirmed_ms: int | None = Field(default=None, sa_type=BigInteger)  # the first good code, at sign-in
    created_ms: int = Field(sa_type=BigInteger)
    left_ms: int | None = Field(default=None, sa_type=BigInteger)


class Invitation(SQLModel, table=True):
    __tablename__ = "invitations"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    code_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    login: str = Field(max_length=200)
    display_name: str = Field(max_length=200)
    roles: str = Field(max_length=200)
    classes: str = Field(default="", max_length=4000)  # class ids (hex, space-separated) to teach on joining
    created_ms: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger)
    used_ms: int | None = Field(default=None, sa_type=BigInteger)
    user_id: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))  # the account it made
    invited_by: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))  # the admin who asked
    reason: str = Field(default="", max_length=500)  # why, as the admin wrote it (shown to the approver)


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    __table_args__ = (Index("ux_devices_id", "id", unique=True),)  # chosen by the client, as account ids are
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    user_id: bytes = Field(sa_column=_bytes())
    public_key: bytes = Field(sa_column=_bytes())
    cert: bytes = Field(sa_column=_bytes())
    delivery_pk: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))  # PROTOCOL 3.2
    created_ms: int = Field(sa_type=BigInteger)
    last_seen_ms: int | None = Field(default=None, sa_type=BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=BigInteger)
    last_counter: int = Field(default=0, sa_type=BigInteger)
    last_hash: bytes = Field(sa_column=_bytes())
    handed_over_ms: int | None = Field(default=None, sa_type=BigInteger)  # revoked: its one hand-over began


class Session(SQLModel, table=True):
    __tablename__ = "sessions"
    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    school_id: bytes = Field(sa_column=_bytes())
    user_id: bytes = Field(sa_column=_bytes())
    device_id: bytes = Field(sa_column=_bytes())
    device_pk: bytes = Field(sa_column=_bytes())  # declared at sign-in; a new device is certified next
    created_ms: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=BigInteger)


class SignInAttempt(SQLModel, table=True):
    """Failed sign-ins, counted per account over a sliding window."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (Index("ix_attempts_account", "school_id", "login", "at_ms"),)
    id: int | None = Field(default=None, primary_key=True)
    school_id: bytes = Field(sa_column=_bytes())
    login: str = Field(max_length=200)
    at_ms: int = Field(sa_type=BigInteger)


class Challenge(SQLModel, table=True):
    """A sign-in challenge: single use, short-lived."""

    __tablename__ = "challenges"
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    school_id: bytes = Field(sa_column=_bytes())
    login: str = Field(max_length=200)
    nonce: bytes = Field(sa_column=_bytes())
    expires_ms: int = Field(sa_type=BigInteger)


class SchoolClass(SQLModel, table=True):
    __tablename__ = "classes"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    label: str = Field(max_length=100)  # e.g. "Year 3 Oak"; not a secret


class Pupil(SQLModel, table=True):
    """A pupil, known only by a pseudonymous id (a keyed hash of the UPN made on a school device)."""

    __tablename__ = "pupils"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    reader_key_id: bytes = Field(sa_column=_bytes())
    created_ms: int = Field(sa_type=BigInteger)
    left_ms: int | None = Field(default=None, sa_type=BigInteger)


class ClassPupil(SQLModel, table=True):
    __tablename__ = "class_pupils"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    class_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    pupil_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))


class ClassTeacher(SQLModel, table=True):
    __tablename__ = "class_teachers"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    class_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    user_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))


class ReaderKey(SQLModel, table=True):
    """One version of a reader key: its public half, and what it is for (a group or a pupil)."""

    __tablename__ = "reader_keys"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    version: int = Field(primary_key=True, sa_type=BigInteger)
    purpose: str = Field(max_length=80)  # "group:safeguarding", "group:sen", "pupil"
    public_key: bytes = Field(sa_column=_bytes())
    created_ms: int = Field(sa_type=BigInteger)
    current: bool = True


class Grant(SQLModel, table=True):
    """A reader key version sealed to a member by a keyholder device; the server cannot open it."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_member", "school_id", "member_id"),)
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    reader_key_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    reader_version: int = Field(primary_key=True, sa_type=BigInteger)
    member_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    granter_device: bytes = Field(sa_column=_bytes())
    grant: bytes = Field(sa_column=_bytes())
    created_ms: int = Field(sa_type=BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=BigInteger)


class EntryGrant(SQLModel, table=True):
    """An entry key version of one concern sealed to a person named on it, by the naming keyholder's device
    (docs/PROTOCOL.md 5.1): the person then receives the concern's envelopes under that version, from the first."""

    __tablename__ = "entry_grants"
    __table_args__ = (Index("ix_entry_grants_member", "school_id", "member_id"),)
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    concern_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    entry_version: int = Field(primary_key=True, sa_type=BigInteger)
    member_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    granter_device: bytes = Field(sa_column=_bytes())
    grant: bytes = Field(sa_column=_bytes())
    created_ms: int = Field(sa_type=BigInteger)


class DirectoryVersion(SQLModel, table=True):
    """A version of the school's signed key directory (docs/PROTOCOL.md, the directory part)."""

    __tablename__ = "directory_versions"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    version: int = Field(primary_key=True, sa_type=BigInteger)
    body: bytes = Field(sa_column=_bytes())  # the whole signed version, as the keyholder device made it
    digest: bytes = Field(sa_column=_bytes())  # its hash, which the next version names
    signing_pk: bytes = Field(sa_column=_bytes())
    next_signing_pk: bytes = Field(sa_column=_bytes())  # the key on file for the next version
    signer_device: bytes = Field(sa_column=_bytes())
    created_ms: int = Field(sa_type=BigInteger)


class Envelope(SQLModel, table=True):
    """One accepted envelope. ``seq`` is the school's sequence number, assigned inside the write."""

    __tablename__ = "envelopes"
    __table_args__ = (
        UniqueConstraint("school_id", "envelope_id"),
        Index("ix_envelopes_concern", "school_id", "concern_id"),
    )
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    envelope_id: bytes = Field(sa_column=_bytes())
    concern_id: bytes = Field(sa_column=_bytes())
    author_device: bytes = Field(sa_column=_bytes())
    counter: int = Field(sa_type=BigInteger)
    device_time_ms: int = Field(sa_type=BigInteger)
    server_time_ms: int = Field(sa_type=BigInteger)
    padded_size: int
    digest: bytes = Field(sa_column=_bytes())
    body: bytes = Field(sa_column=_bytes())


class EnvelopeRecipient(SQLModel, table=True):
    """Which keys an envelope is sealed to: what the server routes and authorises by."""

    __tablename__ = "envelope_recipients"
    __table_args__ = (Index("ix_recipients_key", "school_id", "kind", "key_id", "version", "seq"),)
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    kind: int = Field(primary_key=True)
    key_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    version: int = Field(primary_key=True, sa_type=BigInteger)


class EnvelopePupil(SQLModel, table=True):
    __tablename__ = "envelope_pupils"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    pupil_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))


class AuditEvent(SQLModel, table=True):
    """Who did what, when: never content, never key bytes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_school_time", "school_id", "at_ms"),
        Index("ix_audit_actor", "school_id", "actor_user", "action", "id"),  # a person's own opens (api_review)
    )
    id: int | None = Field(default=None, primary_key=True)
    school_id: bytes = Field(sa_column=_bytes())
    at_ms: int = Field(sa_type=BigInteger)
    actor_user: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))
    actor_device: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))
    action: str = Field(max_length=80)
    target: str = Field(default="", max_length=200)


class RosterRecord(SQLModel, table=True):
    """A pupil's sealed roster entry under one roster key (docs/PROTOCOL.md 11); the newest replaces older."""

    __tablename__ = "roster_entries"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    pupil_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    key_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    key_version: int = Field(sa_type=BigInteger)
    body: bytes = Field(sa_column=_bytes())
    updated_ms: int = Field(sa_type=BigInteger)


class AccessRequest(SQLModel, table=True):
    """Who asked for a widening of who can read, when and why: shown beside it on a keyholder's Approvals
    page (docs/PROTOCOL.md 13.5). Only notes: what takes effect is what a keyholder's approval signs."""

    __tablename__ = "access_requests"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    subject: str = Field(primary_key=True, max_length=200)  # sync.directory.item_key of the widening
    requested_by: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))
    requested_ms: int = Field(sa_type=BigInteger)
    reason: str = Field(default="", max_length=500)


class RotationDue(SQLModel, table=True):
    """A reader key that someone left: a keyholder device owes it a new version (docs/PROTOCOL.md,
    "Keyholder duties and leaving")."""

    __tablename__ = "rotations_due"
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    reader_key_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    due_ms: int = Field(sa_type=BigInteger)


class HeldEnvelope(SQLModel, table=True):
    """An envelope handed over by a revoked device, held for a DSL to accept or reject (never delivered
    until accepted; a rejected one is kept as evidence)."""

    __tablename__ = "held_envelopes"
    __table_args__ = (Index("ix_held_device", "school_id", "author_device", "counter"),)
    school_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    envelope_id: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    author_device: bytes = Field(sa_column=_bytes())
    user_id: bytes = Field(sa_column=_bytes())
    concern_id: bytes = Field(sa_column=_bytes())
    counter: int = Field(sa_type=BigInteger)
    device_time_ms: int = Field(sa_type=BigInteger)
    received_ms: int = Field(sa_type=BigInteger)
    padded_size: int
    digest: bytes = Field(sa_column=_bytes())
    body: bytes = Field(sa_column=_bytes())
    decided_ms: int | None = Field(default=None, sa_type=BigInteger)
    decision: str | None = Field(default=None, max_length=20)  # "accepted", "rejected"
    decided_by: bytes | None = Field(default=None, sa_column=_bytes(nullable=True))
    seq: int | None = Field(default=None, sa_type=BigInteger)
