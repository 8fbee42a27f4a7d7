"""The ``cairn`` command: verbs, the crypto self-check, and ``Error: ...`` with a non-zero exit."""

from __future__ import annotations

import json

import pytest

from crypto.selfcheck import RULE_FOLDERS
from server.cli import VECTORS, main


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("cairn 0.")


def test_selfcheck_passes_every_crypto_vector(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selfcheck"]) == 0
    count = len([p for p in VECTORS.glob("*/*.json") if p.parent.name not in RULE_FOLDERS])
    assert f"crypto self-check: {count} passed, 0 failed" in capsys.readouterr().out


def test_selfcheck_fails_on_a_vector_that_does_not_hold(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    vector = json.loads((VECTORS / "wrap" / "unwrap_success.json").read_text())
    vector["output"]["payload"] = "00" * 32
    (tmp_path / "wrap").mkdir()
    (tmp_path / "wrap" / "unwrap_success.json").write_text(json.dumps(vector))
    assert main(["selfcheck", "--vectors", str(tmp_path)]) == 1
    assert "1 failed" in capsys.readouterr().out


def test_selfcheck_with_no_vectors_is_an_error(tmp_path) -> None:
    with pytest.raises(SystemExit, match="Error: no vectors found"):
        main(["selfcheck", "--vectors", str(tmp_path)])


def test_a_bad_setting_prints_error_and_exits_non_zero(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAIRN_PORT", "not-a-port")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.startswith("Error: CAIRN_PORT")
