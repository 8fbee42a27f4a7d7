"""The docs stay complete: every setting, CLI verb and error code appears where people look for it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import crypto.errors
from server.cli import build_parser
from server.settings import SETTINGS

DOCS = Path(__file__).parents[1] / "docs"
OPERATIONS = (DOCS / "OPERATIONS.md").read_text()
PROTOCOL = (DOCS / "PROTOCOL.md").read_text()


def _verbs() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "verb")
    return sorted(action.choices)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in OPERATIONS, f"{name} is missing from docs/OPERATIONS.md"


@pytest.mark.parametrize("verb", _verbs())
def test_every_cli_verb_is_documented(verb: str) -> None:
    assert f"`cairn {verb}`" in OPERATIONS, f"cairn {verb} is missing from docs/OPERATIONS.md"


CRYPTO_ERRORS = [
    cls for _, cls in inspect.getmembers(crypto.errors, inspect.isclass)
    if issubclass(cls, crypto.errors.CryptoError) and cls is not crypto.errors.CryptoError
]


@pytest.mark.parametrize("cls", CRYPTO_ERRORS, ids=lambda c: c.__name__)
def test_every_crypto_error_and_code_is_documented(cls: type) -> None:
    assert f"`{cls.__name__}`" in PROTOCOL
    assert f"`{cls.code}`" in PROTOCOL


def test_the_docs_list_no_setting_that_does_not_exist() -> None:
    import re

    documented = set(re.findall(r"`(CAIRN_[A-Z_]+)`", OPERATIONS))
    assert documented - set(SETTINGS) == {n for n in documented if n.startswith("CAIRN_TEST_")}
