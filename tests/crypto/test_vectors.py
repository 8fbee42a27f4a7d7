"""Every shared known-answer vector, run through crypto/ (the JavaScript suite runs the same files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto.selfcheck import EXPECTS, RULE_FOLDERS, SelfCheckFailed, check_vector

VECTORS = Path(__file__).parents[1] / "vectors"
FILES = sorted(p for p in VECTORS.glob("*/*.json") if p.parent.name not in RULE_FOLDERS)
CONSTRUCTS = {
    "account", "challenge", "bundle", "recovery", "recovery_proof", "device_cert", "device_auth", "delivery_auth",
    "wrap", "grant", "entry_grant", "envelope", "padding", "roster", "local", "local_wrap", "password_change",
    "directory", "approval", "identity_binding",
}


def test_every_construct_has_vectors_of_success_and_failure() -> None:
    seen: dict[str, set[str]] = {}
    for path in FILES:
        vector = json.loads(path.read_text())
        seen.setdefault(vector["construct"], set()).add(vector["expect"])
        assert path.parent.name == vector["construct"]
        assert path.stem == f"{vector['area']}_{vector['condition']}"
        assert vector["expect"] in EXPECTS and vector["comment"]
    assert set(seen) == CONSTRUCTS
    for construct, expects in seen.items():
        assert "success" in expects, construct
        if construct != "padding":
            assert expects - {"success"}, f"{construct} has no failure vectors"


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_vector(path: Path) -> None:
    check_vector(json.loads(path.read_text()))


def test_a_wrong_expectation_is_caught() -> None:
    """The runner itself can fail: a success vector relabelled as a failure must not pass."""
    vector = json.loads((VECTORS / "wrap" / "unwrap_success.json").read_text())
    with pytest.raises(SelfCheckFailed):
        check_vector({**vector, "expect": "auth_failure"})
    tampered = json.loads((VECTORS / "wrap" / "unwrap_tampered_box.json").read_text())
    with pytest.raises(SelfCheckFailed):
        check_vector({**tampered, "expect": "bad_signature"})
