"""Fuzz targets shared by the fuzz tests (``tests/**/test_*_fuzz.py``) and ``python -m bench.fuzz``.

Each module holds hypothesis strategies for hostile input to one kind of parser, and a ``check_*``
function per parser that feeds it one input and asserts what every input must get. A check returns a
short label of what happened (``"ok"``, or the refusal's code, which the bench counts) and raises
``AssertionError`` when a property breaks; any other exception escaping a check is a crash of the parser
itself. The properties are the project's rules for bad input: the parser answers with its one typed
error and a documented code (docs/PROTOCOL.md 1.1, 9.6, 10.2, 10.3), never with another exception; what
it accepts has the types it promised; what a writer made reads back the same.

Strategies build near-valid input (the right field names and shapes, with one or several parts replaced
by junk) besides plain junk, so the checks reach past the first test of each parser.

- ``junk``: JSON values of every type, tricky strings and numbers, and byte-string damage (``mutate``).
- ``frames``: websocket frames and cursors (sync/protocol.py).
- ``sealed``: envelopes, grants, roster entries and directory versions (crypto/).
- ``staff``: staff files (server/_staff_csv.py).
- ``http`` and ``live``: HTTP bodies and frames over a real socket, against a running server.
"""
