"""The ``cairn`` command line: one entry point, a few verbs, ``Error: ...`` and a non-zero exit on failure."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .settings import Settings, SettingsError

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"


def _version(args: argparse.Namespace) -> int:
    from . import __version__

    print(f"cairn {__version__}")
    return 0


def _selfcheck(args: argparse.Namespace) -> int:
    from crypto.selfcheck import SelfCheckFailed, check_vector

    files = sorted(Path(args.vectors).glob("*/*.json"))
    crypto_files = [f for f in files if f.parent.name != "fold"]
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
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level="info",
    )
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
    serve.set_defaults(run=_serve)
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
