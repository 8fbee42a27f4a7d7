"""The docs cannot rot: every test that docs/THREAT-MODEL.md or tests/adversary/README.md names exists, and
every attack of this suite, and every defence it removes, is in the README's table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NAMED = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")
README_NAMED = re.compile(r"`((?:tests/[\w/]+/)?test_\w+\.py)::(test_\w+)`")
DOCS = [ROOT / "docs" / "THREAT-MODEL.md", HERE / "README.md"]


def defined_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name.startswith("test_")}


def named_in(doc: Path) -> set[tuple[str, str]]:
    """(file relative to the repository, test) for every ``file::test`` the document names. The README
    names this suite's files without their folder."""
    text = doc.read_text(encoding="utf-8")
    found = set(NAMED.findall(text))
    if doc.parent == HERE:
        found |= {(f if f.startswith("tests/") else f"tests/adversary/{f}", t) for f, t in README_NAMED.findall(text)}
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_test_the_docs_name_exists(doc: Path) -> None:
    named = named_in(doc)
    assert len(named) >= 10, f"{doc.name} names only {len(named)} tests: has the format changed?"
    missing = sorted(f"{f}::{t}" for f, t in named if not (ROOT / f).is_file() or t not in defined_in(ROOT / f))
    assert not missing, f"{doc.name} names tests that do not exist: {missing}"


def test_every_attack_and_every_defence_removed_is_in_the_readme() -> None:
    listed = named_in(HERE / "README.md")
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        absent = sorted(t for t in defined_in(path) if (f"tests/adversary/{path.name}", t) not in listed)
        assert not absent, f"tests/adversary/README.md's table lacks {path.name}: {absent}"


def test_the_threat_model_names_a_test_for_admins_the_operator_and_a_hostile_server() -> None:
    text = (ROOT / "docs" / "THREAT-MODEL.md").read_text(encoding="utf-8")
    section = text.split("### 4.0 ", 1)[1].split("\n### 4.1 ", 1)[0]
    for actor in ("**An admin**", "**The operator**", "**A hostile server**"):
        assert actor in section, f"THREAT-MODEL.md section 4.0 says nothing of {actor}"
    assert len(set(NAMED.findall(section))) >= 20
