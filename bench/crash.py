"""Crash-safety harness (issue 8): ``python -m bench.crash --points 1000 [--db sqlite|postgres]``.

Kills a real server process (and a real client device process) with SIGKILL at ``--points`` chosen
fault points while devices keep writing, restarts it, and checks that nothing acknowledged was lost or
stored twice, that every device's outbox drains, and that a reader converges on the server's records.
On SQLite each server crash is also a power cut under a model of what ``synchronous`` had fsynced;
``--synchronous NORMAL`` runs the control, which must lose acknowledged envelopes. How it works:
bench/_crash.py; the power-loss model: bench/_crash_disk.py.

Figures go to stdout as ``name: value unit`` lines; progress to stderr. Exits 1 when anything was
lost, duplicated, left undrained or diverged (for the FULL run), or when a process failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from ._crash import CrashResult, _say, run_crash
from ._sync_server import BenchError, _database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100, help="crash points to go through (default 100)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--synchronous", choices=("FULL", "NORMAL"), default="FULL", help="SQLite's mode; NORMAL is the control"
    )
    parser.add_argument("--no-power-cut", action="store_true", help="SIGKILL only, no power-loss model")
    parser.add_argument("--seed", type=int, default=1, help="chooses the points (default 1)")
    args = parser.parse_args(argv)
    if args.points < 1:
        parser.error("--points must be at least 1")
    if args.db != "sqlite" and args.synchronous != "FULL":
        parser.error("--synchronous applies to SQLite only")

    async def run(folder: Path) -> CrashResult:
        async with _database(args.db, folder) as url:
            return await run_crash(
                args.points,
                folder,
                database_url=url,
                synchronous=args.synchronous,
                power_cut=not args.no_power_cut,
                seed=args.seed,
                say=_say,
            )

    with tempfile.TemporaryDirectory(prefix="cairn-crash-") as folder:
        try:
            result = asyncio.run(run(Path(folder)))
        except BenchError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    for line in result.lines():
        print(line, flush=True)
    for error in result.errors:
        _say(error)
    if args.synchronous == "NORMAL":
        return 0
    harm = result.lost + result.duplicated + result.undrained + result.diverged + result.seq_gaps
    return 1 if harm or result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
