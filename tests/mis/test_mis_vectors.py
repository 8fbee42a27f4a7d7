"""The pupil file vectors (tests/vectors/mis/, PROTOCOL 11.1), which the browser's reader passes too
(pwa/test/mis.test.mjs): the Python reader gives each one's pupils, problems or file code."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest

from sync.mis import MisFileError, read_file

FILES = sorted((Path(__file__).parents[1] / "vectors" / "mis").glob("*.json"))


def test_there_are_vectors_of_each_format_and_outcome() -> None:
    kinds = {(json.loads(f.read_text())["area"], json.loads(f.read_text())["expect"]) for f in FILES}
    assert kinds == {("csv", "success"), ("csv", "parse_failure"), ("ctf", "success"), ("ctf", "parse_failure")}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_the_reader_gives_each_vector_s_answer(path: Path) -> None:
    v = json.loads(path.read_text())
    inputs, output = v["inputs"], v["output"]
    data, today = bytes.fromhex(inputs["file"]), date.fromisoformat(inputs["today"])
    try:
        read = read_file(data, inputs.get("columns"), today)
    except MisFileError as refused:
        assert output == {"file_code": refused.code}
        return
    if read.problems:
        assert output == {"problems": [[p.line, p.column, p.code] for p in read.problems]}
        return
    pupils = [{k: x.isoformat() if isinstance(x, date) else x for k, x in asdict(p).items()} for p in read.pupils]
    assert output == {"format": read.format, "pupils": pupils, "columns": dict(read.columns),
                      "ignored": list(read.ignored)}
