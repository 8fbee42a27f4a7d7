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
    """Every verb of the ``cairn`` command, and every verb under those that have their own (``device sync``)."""
    import argparse

    def walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        out = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out += [f"{prefix}{name}", *walk(sub, f"{prefix}{name} ")]
        return out

    return sorted(walk(build_parser(), ""))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in OPERATIONS, f"{name} is missing from docs/OPERATIONS.md"


@pytest.mark.parametrize("verb", _verbs())
def test_every_cli_verb_is_documented(verb: str) -> None:
    import re

    assert re.search(rf"`cairn {re.escape(verb)}[ `]", OPERATIONS), f"cairn {verb} is missing from docs/OPERATIONS.md"


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


def _table_codes(heading: str) -> set[str]:
    import re

    section = PROTOCOL.split(heading, 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def test_every_websocket_error_code_is_documented_and_no_other() -> None:
    from sync.protocol import ERROR_CODES

    assert _table_codes("### 9.6 Error codes (websocket)") == set(ERROR_CODES)


def test_every_http_error_code_is_documented_and_no_other() -> None:
    from server.errors import API_ERROR_CODES

    assert _table_codes("### 10.2 Error codes (HTTP)") == set(API_ERROR_CODES)


def test_every_message_type_and_limit_is_documented() -> None:
    from sync.protocol import CLIENT_MESSAGES, LIMITS, SERVER_MESSAGES

    assert _table_codes("### 9.3 Messages from the client") == set(CLIENT_MESSAGES)
    assert _table_codes("### 9.4 Messages from the server") == set(SERVER_MESSAGES)
    assert _table_codes("### 9.2 Limits") == set(LIMITS)


def test_every_http_route_is_documented() -> None:
    from server.api import ROUTES

    for path, method, _, _ in ROUTES:
        assert f"`{method} {path}`" in PROTOCOL, f"{method} {path} is missing from docs/PROTOCOL.md section 10"


ROOT = DOCS.parent
CITING = ("crypto", "sync", "server", "bench", "tests", "pwa/js", "docs")


def test_the_docs_stand_on_their_own() -> None:
    """Nothing in the repository cites a file outside it (the design is docs/ARCHITECTURE.md), and every
    relative link in README.md and docs/ points at a file the repository holds."""
    import re

    outside = re.compile(r"\.\./shared/|(?<![/\w])DESIGN\.md")
    citing = []
    for folder in CITING:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".js", ".mjs", ".md", ".html"} and "node_modules" not in path.parts:
                if path.name != "test_docs.py" and outside.search(path.read_text("utf-8")):
                    citing.append(str(path.relative_to(ROOT)))
    assert citing == []
    for doc in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text("utf-8")):
            assert (doc.parent / target).exists(), (doc.name, target)


def test_every_mis_file_code_is_documented_and_no_other() -> None:
    from sync.mis import FILE_CODES, PROBLEMS

    section = "### 11.1 Pupil files from the MIS"
    assert _table_codes(section) == set(FILE_CODES) | set(PROBLEMS)
