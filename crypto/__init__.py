"""Cairn's cryptographic constructions (docs/PROTOCOL.md): PyNaCl only, no I/O.

Two layers, as in PyNaCl: ``_primitives`` (thin libsodium calls, no policy) and the constructions
below, which choose what is bound, checked and refused. ``crypto.envelope`` is used as a module
(``envelope.seal``, ``envelope.open``) so that it reads side by side with pwa/js/crypto/envelope.js.
"""

from . import envelope
from .account import AccountKeys, KdfParams, derive_account, sign_challenge, verify_challenge
from .approval import Approval, sign_approval, verify_approval
from .bundle import SLOT_PASSWORD, SLOT_RECOVERY, IdentityKeys, open_bundle, seal_bundle
from .device import (
    DeviceCert,
    make_device_cert,
    sign_delivery_auth,
    sign_device_auth,
    verify_delivery_auth,
    verify_device_auth,
    verify_device_cert,
)
from .directory import SignedDirectory, directory_signing_key, fingerprint, sign_directory, verify_directory
from .entry_grant import EntryGrantInfo, make_entry_grant, open_entry_grant, read_entry_grant, verify_entry_grant
from .errors import (
    BadSignature,
    CryptoError,
    DecryptionFailed,
    Malformed,
    NoKey,
    ParametersBelowFloor,
    Rollback,
    Unapproved,
    UnsupportedVersion,
)
from .grant import GrantInfo, make_grant, open_grant, read_grant, verify_grant
from .identity import sign_identity_binding, verify_identity_binding
from .keys import BoxKeyPair, SecretKey, SigningKey
from .local import (
    SLOT_IDENTITY,
    identity_wrap_key,
    local_key,
    new_data_key,
    open_legacy_local,
    open_local,
    password_wrap_key,
    seal_local,
    unwrap_data_key,
    wrap_data_key,
)
from .recovery import (
    format_recovery_key,
    generate_recovery_key,
    parse_recovery_key,
    recovery_auth_key,
    recovery_kek,
    sign_password_change,
    sign_recovery_proof,
    verify_password_change,
    verify_recovery_proof,
)
from .roster import RosterEntry, open_roster_entry, pupil_id_for, seal_roster_entry, verify_roster_entry
from .wrap import unwrap_key, wrap_key

__all__ = [
    "envelope",
    "AccountKeys",
    "KdfParams",
    "derive_account",
    "sign_challenge",
    "verify_challenge",
    "SLOT_PASSWORD",
    "SLOT_RECOVERY",
    "IdentityKeys",
    "open_bundle",
    "seal_bundle",
    "Approval",
    "sign_approval",
    "verify_approval",
    "SignedDirectory",
    "directory_signing_key",
    "fingerprint",
    "sign_directory",
    "verify_directory",
    "DeviceCert",
    "make_device_cert",
    "verify_device_cert",
    "sign_device_auth",
    "verify_device_auth",
    "sign_delivery_auth",
    "verify_delivery_auth",
    "BadSignature",
    "CryptoError",
    "DecryptionFailed",
    "Malformed",
    "NoKey",
    "ParametersBelowFloor",
    "Rollback",
    "Unapproved",
    "UnsupportedVersion",
    "EntryGrantInfo",
    "make_entry_grant",
    "open_entry_grant",
    "read_entry_grant",
    "verify_entry_grant",
    "GrantInfo",
    "make_grant",
    "open_grant",
    "read_grant",
    "verify_grant",
    "sign_identity_binding",
    "verify_identity_binding",
    "BoxKeyPair",
    "SecretKey",
    "SigningKey",
    "format_recovery_key",
    "generate_recovery_key",
    "parse_recovery_key",
    "recovery_auth_key",
    "recovery_kek",
    "sign_recovery_proof",
    "verify_recovery_proof",
    "SLOT_IDENTITY",
    "identity_wrap_key",
    "local_key",
    "new_data_key",
    "open_legacy_local",
    "open_local",
    "password_wrap_key",
    "seal_local",
    "unwrap_data_key",
    "wrap_data_key",
    "sign_password_change",
    "verify_password_change",
    "RosterEntry",
    "open_roster_entry",
    "pupil_id_for",
    "seal_roster_entry",
    "verify_roster_entry",
    "unwrap_key",
    "wrap_key",
]
