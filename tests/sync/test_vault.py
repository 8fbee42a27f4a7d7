"""The Python device's sealed records (sync/vault.py, docs/PROTOCOL.md 2.8 and 12): a rewrap never re-seals,
a crash between the new wrap and the old one's removal leaves a store that opens, and a record of one
device, account or kind is never offered as another's."""

from __future__ import annotations

import os
import sqlite3

import pytest

from crypto import DecryptionFailed, SecretKey
from sync.vault import Locked, Vault


def _ids() -> tuple[bytes, bytes, bytes]:
    return os.urandom(16), os.urandom(16), os.urandom(16)


def test_a_rewrap_keeps_every_record_and_the_old_password_no_longer_opens(tmp_path) -> None:
    ids, old, new = _ids(), SecretKey.generate(), SecretKey.generate()
    vault = Vault(tmp_path / "v.db", *ids)
    vault.create(old, os.urandom(32))
    vault.put("draft", bytes(16), b"fictional draft")
    sealed_before = sqlite3.connect(tmp_path / "v.db").execute("SELECT sealed FROM vault_records").fetchall()
    vault.rewrap(new)
    vault.close()
    assert sqlite3.connect(tmp_path / "v.db").execute("SELECT sealed FROM vault_records").fetchall() == sealed_before
    reopened = Vault(tmp_path / "v.db", *ids)
    with pytest.raises(DecryptionFailed):
        reopened.unlock(old)
    with pytest.raises(Locked):
        reopened.get("draft", bytes(16))
    reopened.unlock(new)
    assert reopened.get("draft", bytes(16)) == b"fictional draft"


def test_a_crash_between_the_new_wrap_and_the_old_ones_removal_opens_with_either_password(tmp_path) -> None:
    ids, old, new, identity = _ids(), SecretKey.generate(), SecretKey.generate(), os.urandom(32)
    vault = Vault(tmp_path / "v.db", *ids)
    vault.create(old, identity)
    vault.put("draft", bytes(16), b"fictional")
    vault.stage(new)
    vault.close()  # the process dies here, or the server's answer is lost
    for kek in (old, new):
        reopened = Vault(tmp_path / "v.db", *ids)
        reopened.unlock(kek)
        assert reopened.get("draft", bytes(16)) == b"fictional"
        reopened.close()
    final = Vault(tmp_path / "v.db", *ids)
    with pytest.raises(DecryptionFailed):  # opening the staged wrap committed it
        final.unlock(old)
    final.unlock_with_identity(identity)  # the identity slot was never touched
    assert final.get("draft", bytes(16)) == b"fictional"


def test_a_refused_change_keeps_the_old_wrap(tmp_path) -> None:
    ids, old, new = _ids(), SecretKey.generate(), SecretKey.generate()
    vault = Vault(tmp_path / "v.db", *ids)
    vault.create(old, os.urandom(32))
    vault.stage(new)
    vault.discard_staged()
    vault.lock()
    with pytest.raises(DecryptionFailed):
        vault.unlock(new)
    vault.unlock(old)


def test_a_store_copied_to_another_device_or_account_does_not_open(tmp_path) -> None:
    school, user, device = _ids()
    kek, identity = SecretKey.generate(), os.urandom(32)
    vault = Vault(tmp_path / "v.db", school, user, device)
    vault.create(kek, identity)
    vault.put("draft", bytes(16), b"fictional")
    vault.close()
    for other in ((school, user, os.urandom(16)), (school, os.urandom(16), device)):
        copied = Vault(tmp_path / "v.db", *other)
        with pytest.raises(DecryptionFailed):
            copied.unlock(kek)
        with pytest.raises(DecryptionFailed):
            copied.unlock_with_identity(identity)
        copied.close()
    mine = Vault(tmp_path / "v.db", school, user, device)
    mine.unlock(kek)
    raw = sqlite3.connect(tmp_path / "v.db")
    raw.execute("UPDATE vault_records SET kind = 'audit'")  # a draft offered as another kind
    raw.commit()
    with pytest.raises(DecryptionFailed):
        mine.get("audit", bytes(16))
    assert "fictional" not in repr(mine)
