"""The ``cairn`` command line: one entry point, a few verbs, ``Error: ...`` and a non-zero exit on failure."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sync.protocol import LIMITS

from .settings import Settings, SettingsError

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"


def _version(args: argparse.Namespace) -> int:
    from . import __version__

    print(f"cairn {__version__}")
    return 0


def _selfcheck(args: argparse.Namespace) -> int:
    from crypto.selfcheck import RULE_FOLDERS, SelfCheckFailed, check_vector

    files = sorted(Path(args.vectors).glob("*/*.json"))
    crypto_files = [f for f in files if f.parent.name not in RULE_FOLDERS]
    if not crypto_files:
        raise SystemExit(f"Error: no vectors found under {args.vectors}")
    failed = 0
    for path in crypto_files:
        try:
            check_vector(json.loads(path.read_text()))
        except SelfCheckFailed as exc:
            failed += 1
            print(f"FAIL {path.parent.name}/{path.stem}: {exc}", file=sys.stderr)
    print(f"crypto self-check: {len(crypto_files) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    if args.demo and _demo(args):
        return 1
    # Fewer, later garbage collections: the ingest path allocates many short-lived objects and full
    # collections paused the event loop for up to 130 ms (bench.sync, profiled with py-spy).
    gc.set_threshold(50_000, 50, 1000)
    gc.freeze()
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level="info",
        ws_max_size=2 * LIMITS["max_frame_bytes"],
        ws_per_message_deflate=False,  # envelopes are ciphertext: compression buys nothing and costs ~45 KiB a socket
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    import asyncio

    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from .migrate import current, upgrade

    url = Settings.from_env().database_url

    async def run() -> str | None:
        await upgrade(url)
        return await current(url)

    try:
        revision = asyncio.run(run())
    except (OSError, SQLAlchemyError, CommandError) as exc:
        print(f"Error: migrating the database: {exc}", file=sys.stderr)
        return 1
    print(f"database at revision {revision}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from sync.client import SyncError
    from sync.device import ApiFailure

    from .demo import CREDENTIALS, DemoError, describe, ensure_demo

    settings = Settings.from_env()
    credentials = Path(getattr(args, "credentials", None) or CREDENTIALS)
    try:
        info = asyncio.run(ensure_demo(settings, credentials=credentials))
    except (DemoError, ApiFailure, SyncError, OSError, SQLAlchemyError, CommandError) as exc:
        print(f"Error: building the demo school: {exc}", file=sys.stderr)
        return 1
    host = args.host or settings.host
    print(describe(info, f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{args.port or settings.port}"))
    return 0


def _backup(args: argparse.Namespace) -> int:
    from .backup import BackupError, backup, restore

    url = Settings.from_env().database_url
    try:
        if args.verb == "backup":
            print(backup(url, Path(args.dest)).describe("backup written to"))
        else:
            print(restore(url, Path(args.src), force=args.force).describe("restored into"))
    except BackupError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cairn", description="Cairn: an end-to-end encrypted safeguarding record.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("version", help="print the version").set_defaults(run=_version)
    check = verbs.add_parser("selfcheck", help="run the cryptographic known-answer vectors")
    check.add_argument("--vectors", default=str(VECTORS), help="folder of vectors (default: tests/vectors)")
    check.set_defaults(run=_selfcheck)
    serve = verbs.add_parser("serve", help="start the server with uvicorn")
    serve.add_argument("--host", help="address to listen on (default: CAIRN_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: CAIRN_PORT)")
    serve.add_argument("--demo", action="store_true", help="first build the fictional demo school, or reuse it")
    serve.set_defaults(run=_serve)
    demo = verbs.add_parser("demo", help="build the fictional demo school (or reuse it) and print its sign-ins")
    demo.add_argument("--credentials", help="where the demo sign-ins are kept (default: data/demo-credentials.json)")
    demo.add_argument("--host", help="address shown in the URL (default: CAIRN_HOST)")
    demo.add_argument("--port", type=int, help="port shown in the URL (default: CAIRN_PORT)")
    demo.set_defaults(run=_demo)
    migrate = verbs.add_parser("migrate", help="upgrade the database (CAIRN_DATABASE_URL) to the newest schema")
    migrate.set_defaults(run=_migrate)
    backup = verbs.add_parser("backup", help="write a consistent copy of the database to DEST, while the server runs")
    backup.add_argument("dest", metavar="DEST", help="the new backup file (never overwritten)")
    backup.set_defaults(run=_backup)
    restore = verbs.add_parser("restore", help="bring a backup back into the database (stop the server first)")
    restore.add_argument("src", metavar="SRC", help="a file made by cairn backup")
    restore.add_argument("--force", action="store_true", help="replace a database that is not empty")
    restore.set_defaults(run=_backup)
    from ._cli_device import add_verbs

    add_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
