"""Fault injection for the crash harness (bench/_crash.py): ``point(name)`` marks a moment where the
harness may have this process killed, and is a no-op unless the harness armed it.

The harness arms one point per process with the environment variable ``CAIRN_TEST_CRASH_AT`` set to
``NAME:N``: the Nth time ``point(NAME)`` is reached, the process sends itself SIGKILL (no cleanup, no
flush, no rollback: the same as a power cut for the process, though not for the disk). The variable
is test-only and never set in production (docs/OPERATIONS.md); it is read here rather than by
``Settings`` because it is not a setting, and ``Settings.from_env`` ignores ``CAIRN_TEST_*`` names.

The server's points:

``storage.mid_batch``
    inside the write transaction, after the envelope rows are inserted and before their recipients,
    pupils and the school's counter: a group commit half written, nothing committed.
``storage.before_commit``
    everything of a group commit written, the transaction not yet committed.
``sync.before_ack``
    the commit is durable, the ``ack`` not yet sent.
``sync.before_push``
    a commit is being pushed to a live reader, this push not yet sent.

The harness's client device (bench/_crash_client.py) has points of its own, named ``client.*``.
"""

from __future__ import annotations

import os
import signal

__all__ = ["point", "ENV"]

ENV = "CAIRN_TEST_CRASH_AT"

_UNREAD = ("", 0)
_target: tuple[str, int] | None = _UNREAD
_hits = 0


def point(name: str) -> None:
    """Kill this process with SIGKILL if ``name`` is the armed point and this is its Nth time."""
    global _target, _hits
    if _target is _UNREAD:
        _target = _parse(os.environ.get(ENV, ""))
    if _target is None or _target[0] != name:
        return
    _hits += 1
    if _hits == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def _parse(value: str) -> tuple[str, int] | None:
    """``NAME:N`` (N >= 1), or None when the variable is absent or empty."""
    if not value:
        return None
    name, _, count = value.rpartition(":")
    if not name or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV} must look like NAME:N with N >= 1 (e.g. storage.before_commit:17), not {value!r}")
    return name, int(count)
