"""The crash harness's power-loss model for SQLite: what the disk holds after the power fails.

A SIGKILL alone loses nothing the process handed to the kernel: the page cache survives the process.
A power cut loses whatever was written but not yet fsynced. In WAL mode SQLite writes only the WAL
while serving; the database file changes only at a checkpoint, which fsyncs the WAL first and the
database file after. When SQLite fsyncs the WAL is what ``synchronous`` decides (sqlite.org/pragma.html
and wal.html):

- ``FULL``: the WAL is fsynced inside every commit, before the commit returns (so before any ack).
- ``NORMAL``: the WAL is fsynced only by a checkpoint (and its 32-byte header when a new WAL starts);
  a commit returns with its frames in the page cache only.

The model takes the worst case the contract allows: every byte not fsynced is gone. Applied after the
server was killed and before anything opens the database again, it truncates the WAL to its durable
prefix and deletes the shared-memory index (``-shm``, rebuilt from the WAL on the next open):

- ``FULL``: the WAL up to the end of its last commit frame (frames after it belong to a transaction
  that never committed, which SQLite ignores anyway).
- ``NORMAL``: the WAL header only, provided no checkpoint can have run since the harness's own last
  checkpoint. The harness checkpoints with ``wal_checkpoint(TRUNCATE)`` whenever the server is down, so
  each server process starts with an empty WAL; SQLite checkpoints by itself only when the WAL reaches
  ``wal_autocheckpoint`` pages (1000) at a commit, or when its last connection closes (the migration
  step at start, before anything is served or acknowledged). A WAL file shorter than 1000 frames
  therefore proves that no checkpoint ran after the first acknowledgement, and nothing of it was
  fsynced. A longer one is left whole and reported as not modelled: the model may miss a loss, never
  invent one.

This is deterministic: the same WAL gives the same image. Frames are told apart by the salts in the WAL
header (frames of an earlier WAL generation carry other salts); checksums are left to SQLite, which
verifies them when it replays the WAL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PowerLoss", "power_loss", "AUTOCHECKPOINT_FRAMES"]

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
AUTOCHECKPOINT_FRAMES = 1000  # SQLite's default wal_autocheckpoint; the server does not change it
_MAGICS = (0x377F0682, 0x377F0683)


@dataclass(frozen=True)
class PowerLoss:
    frames: int  # valid frames of the current WAL generation before the power cut
    kept: int  # frames the model keeps
    modelled: bool  # False: the WAL was too long to rule out a checkpoint, and was left whole

    @property
    def dropped(self) -> int:
        return self.frames - self.kept


def power_loss(database: Path, synchronous: str) -> PowerLoss:
    """Cut the power under the SQLite database at ``database`` (its server already dead): keep only
    what ``synchronous`` had fsynced."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"the power-loss model knows synchronous FULL and NORMAL, not {synchronous!r}")
    wal = database.with_name(database.name + "-wal")
    shm = database.with_name(database.name + "-shm")
    shm.unlink(missing_ok=True)
    if not wal.exists() or wal.stat().st_size < WAL_HEADER_BYTES:
        return PowerLoss(0, 0, True)
    data = wal.read_bytes()
    magic, _version, page_size, _checkpoints, salt1, salt2 = struct.unpack(">6I", data[:24])
    if magic not in _MAGICS:
        raise ValueError(f"{wal} is not a SQLite WAL file")
    frame_bytes = FRAME_HEADER_BYTES + page_size
    frames, last_commit = 0, 0
    while WAL_HEADER_BYTES + (frames + 1) * frame_bytes <= len(data):
        offset = WAL_HEADER_BYTES + frames * frame_bytes
        _page, commit_pages, frame_salt1, frame_salt2 = struct.unpack(">4I", data[offset : offset + 16])
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break
        frames += 1
        if commit_pages:
            last_commit = frames
    in_file = (len(data) - WAL_HEADER_BYTES) // frame_bytes
    if synchronous == "FULL":
        kept, modelled = last_commit, True
    elif in_file < AUTOCHECKPOINT_FRAMES:
        kept, modelled = 0, True
    else:
        kept, modelled = last_commit, False
    with open(wal, "r+b") as f:
        f.truncate(WAL_HEADER_BYTES + kept * frame_bytes)
    return PowerLoss(frames, kept, modelled)
