"""The ``cairn school`` verb (the operator founds a school) and the ``cairn device`` verbs (a device for scripts).

A device verb is one whole device session: it asks for the password (or reads ``--password-file``),
signs in as a new device whose key is made in memory, does its work — log a concern and send it, or
pull what the account may read — and signs out. The device key never reaches the disk: keeping it
between runs would need it sealed at rest, which is a cryptographic construction Cairn does not have
yet (docs/OPERATIONS.md, "Devices for scripts"). So the store folder (``--store``) holds no secret:

- ``device.json``: the server, the school, the login and the last TOTP time step used (public facts);
- ``inbox.db``: what ``sync`` pulled, still sealed, and the pull cursor;
- ``directory.bin``: the newest signed directory version this store accepted; ``device.json`` keeps the
  school signing key it pinned (docs/PROTOCOL.md 13);
- ``outbox-<device>.db``: the outbox of one ``log`` session, removed once the server has acknowledged it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import getpass
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

__all__ = ["add_verbs", "Failure"]

STATE = "device.json"
INBOX = "inbox.db"
DIRECTORY = "directory.bin"
LOGIN = r"[A-Za-z0-9._@+-]{1,200}"


class Failure(Exception):
    """A verb cannot go on; the message is printed after ``Error: ``."""


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    school = verbs.add_parser("school", help="operator: create a school and its founding invitation")
    school_verbs = school.add_subparsers(dest="school_verb", required=True, metavar="VERB")
    create = school_verbs.add_parser(
        "create",
        help="create a school and one invitation for its founding account (head or DSL)",
        description="Create a school in CAIRN_DATABASE_URL and print its id and the founding invitation code. "
        "The founder's device then makes the school's keys: the operator can never read the school.",
    )
    create.add_argument("--name", required=True, help="the school's name (1 to 200 characters)")
    create.add_argument("--founder-login", required=True, help="the founding account's login")
    create.add_argument("--founder-name", required=True, help="the founding account's display name")
    create.set_defaults(run=_verb(_school_create))
    from ._cli_staff import add_import_staff

    add_import_staff(school_verbs)

    device = verbs.add_parser("device", help="a device for scripts: register, sign in, log a concern, sync")
    device_verbs = device.add_subparsers(dest="device_verb", required=True, metavar="VERB")
    register = device_verbs.add_parser(
        "register",
        help="accept an invitation: make this account's keys here, print its recovery key and TOTP secret",
        description="Accept an invitation. The account's keys are made on this machine; the server receives "
        "public keys and sealed bundles only. Prints the recovery key (and, for accounts that read concerns, "
        "the TOTP secret) once. A founding account's device also makes the school's group keys.",
    )
    register.add_argument("--school", required=True, help="the school id (32 hex digits)")
    register.add_argument("--code", required=True, help="the invitation code")
    _common(register, store_only=False)
    register.set_defaults(run=_verb(_register))

    sign_in = device_verbs.add_parser(
        "sign-in",
        help="check that an account signs in, and set up a store folder for it",
        description="Sign in once as a new device session of an existing account, then sign out; the store "
        "folder remembers the server, school and login for the other verbs.",
    )
    sign_in.add_argument("--school", required=True, help="the school id (32 hex digits)")
    sign_in.add_argument("--login", required=True, help="the account's login")
    _common(sign_in, store_only=False)
    sign_in.set_defaults(run=_verb(_sign_in))

    log = device_verbs.add_parser(
        "log",
        help="log a concern about one or more pupils, sealed on this machine, and send it",
        description="Sign in, seal a new concern (a 'created' event) into an outbox in the store, send it over "
        "the sync websocket and sign out. Pupils are the pseudonymous ids the server knows (32 hex digits).",
    )
    log.add_argument("--pupil", required=True, action="append", help="a pupil id; repeat for several pupils")
    log.add_argument("--text", required=True, help="what was seen or heard (the record's 'observed')")
    log.add_argument("--kind", default="safeguarding_concern", help="the record's kind (default: %(default)s)")
    log.add_argument("--category", default="pastoral_other", help="a category id (default: %(default)s)")
    log.add_argument("--occurred-at", help="YYYY-MM-DD or YYYY-MM-DDTHH:MM, school local time (default: now)")
    log.add_argument("--location", help="where it happened")
    _common(log, store_only=True)
    log.set_defaults(run=_verb(_log))

    sync = device_verbs.add_parser(
        "sync",
        help="pull every envelope this account may read into the store, and print the counts",
        description="Sign in, pull everything the account may read since the last sync into the store "
        "(still sealed), print how many envelopes were sent and received, and sign out.",
    )
    _common(sync, store_only=True)
    sync.set_defaults(run=_verb(_sync))

    approvals = device_verbs.add_parser(
        "approvals",
        help="a safeguarding keyholder: list what waits for approval (who asked, when, why)",
        description="Sign in, follow the signed directory and list each widening of who can read that the "
        "school's rows hold and no keyholder has approved: new accounts, roles, class places, pupils, key "
        "versions. This device works the list out itself; the server's notes (who asked, when, why) are shown "
        "beside it. Each line starts with the item's name, for `cairn device approve --item`.",
    )
    _common(approvals, store_only=True)
    approvals.set_defaults(run=_verb(_approvals))

    approve = device_verbs.add_parser(
        "approve",
        help="a safeguarding keyholder: approve waiting widenings, signed on this device",
        description="Sign in, show the waiting widenings again, and approve the ones named (or all of them, "
        "as one reviewed list): this device signs an approval and the next directory version that lists them. "
        "The keys follow through the keyholder duties.",
    )
    approve.add_argument("--item", action="append", default=[], help="an item's name from `cairn device approvals`")
    approve.add_argument("--all", action="store_true", help="approve every waiting item shown")
    _common(approve, store_only=True)
    approve.set_defaults(run=_verb(_approve))


def _common(parser: argparse.ArgumentParser, *, store_only: bool) -> None:
    parser.add_argument("--store", required=True, type=Path, help="this device's store folder")
    parser.add_argument("--password-file", type=Path, help="read the password from this file (default: ask)")
    parser.add_argument("--totp", help="a one-time code, for accounts that read concerns")
    parser.add_argument("--totp-secret-file", type=Path, help="make the one-time code from the secret in this file")
    if not store_only:
        parser.add_argument("--server", help="the server's URL (default: http://CAIRN_HOST:CAIRN_PORT)")


def _verb(work: Callable[[argparse.Namespace], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    """Run an async verb; every expected failure becomes ``Error: ...`` and exit status 1."""
    from websockets.exceptions import WebSocketException

    from crypto import CryptoError
    from sync.client import SyncError as ConnectionFailure
    from sync.device import ApiFailure
    from sync.record import SyncError

    from .settings import SettingsError

    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(work(args))
        except SettingsError:
            raise
        except Failure as exc:
            print(f"Error: {exc}", file=sys.stderr)
        except ApiFailure as exc:
            print(f"Error: the server refused: {exc.detail} ({exc.code})", file=sys.stderr)
        except ConnectionFailure as exc:
            print(f"Error: syncing: {exc}", file=sys.stderr)
        except (SyncError, CryptoError) as exc:
            print(f"Error: {exc}", file=sys.stderr)
        except (httpx.HTTPError, WebSocketException) as exc:
            print(f"Error: cannot reach the server ({exc}); is `cairn serve` running?", file=sys.stderr)
        except (OSError, LookupError, ValueError) as exc:
            print(f"Error: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("Error: interrupted", file=sys.stderr)
            return 130
        return 1

    return run


# --- cairn school create -----------------------------------------------------------------------------


async def _school_create(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from .db import make_engine
    from .migrate import upgrade
    from .schools import create_school
    from .settings import Settings

    if not re.fullmatch(LOGIN, args.founder_login):
        raise Failure("a login is 1 to 200 letters, digits and . _ @ + -")
    if not 0 < len(args.founder_name) <= 200 or not 0 < len(args.name) <= 200:
        raise Failure("a school name and a display name are 1 to 200 characters")
    url = Settings.from_env().database_url
    try:
        await upgrade(url)
        engine = make_engine(url)
        try:
            school_id, code = await create_school(engine, args.name, args.founder_login, args.founder_name)
        finally:
            await engine.dispose()
    except SQLAlchemyError as exc:
        raise Failure(f"creating the school: {exc}") from None
    print(f"school id: {school_id.hex()}")
    print(f"founding invitation code: {code}")
    print(f"  for {args.founder_login} only, once, within 14 days: `cairn device register` or the app accepts it")
    return 0


# --- the store folder ----------------------------------------------------------------------------------


def _state(store: Path) -> dict:
    try:
        state = json.loads((store / STATE).read_text("utf-8"))
    except FileNotFoundError:
        raise Failure(f"{store} is not a device store: run `cairn device register` or `sign-in` first") from None
    except ValueError as exc:
        raise Failure(f"reading {store / STATE}: {exc}") from None
    return state


def _save_state(store: Path, state: dict) -> None:
    store.mkdir(parents=True, exist_ok=True)
    note = "A Cairn device store: public facts only. No key is kept here; every device verb asks for the password."
    (store / STATE).write_text(json.dumps({"note": note, **state}, indent=1) + "\n", "utf-8")


def _school_id(value: str) -> bytes:
    if not re.fullmatch(r"[0-9a-fA-F]{32}", value):
        raise Failure(f"a school id is 32 hex digits, not {value!r}")
    return bytes.fromhex(value)


def _server(args: argparse.Namespace, state: dict | None = None) -> str:
    if getattr(args, "server", None):
        return args.server.rstrip("/")
    if state:
        return state["server"]
    from .settings import Settings

    settings = Settings.from_env()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def _password(args: argparse.Namespace, *, confirm: bool = False) -> str:
    if args.password_file is not None:
        password = args.password_file.read_text("utf-8").rstrip("\r\n")
        if not password:
            raise Failure(f"{args.password_file} is empty")
        return password
    if not sys.stdin.isatty():
        raise Failure("no terminal to ask for the password: pass --password-file")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != password:
        raise Failure("the two passwords differ")
    if not password:
        raise Failure("the password is empty")
    return password


def _totp(args: argparse.Namespace, state: dict) -> tuple[str | None, int | None]:
    """A one-time code and its time step. From a secret, never a step already used from this store: the
    server takes each code once, and accepts the next step's code early."""
    if args.totp:
        return args.totp, None
    if args.totp_secret_file is None:
        return None, None
    import pyotp

    secret = args.totp_secret_file.read_text("utf-8").strip()
    step = max(int(time.time()) // 30, int(state.get("totp_step", 0)) + 1)
    wait = (step - 1) * 30 - time.time()
    if wait > 0:  # two sessions in one 30-second window: the next code becomes valid soon
        time.sleep(wait + 0.5)
    return pyotp.TOTP(secret).at(step * 30), step


async def _signed_in(http: httpx.AsyncClient, args: argparse.Namespace, state: dict, password: str, device=None):  # type: ignore[no-untyped-def]
    from sync.device import ApiFailure, sign_in

    school_id, login = bytes.fromhex(state["school_id"]), state["login"]
    code, step = _totp(args, state)
    try:
        signed = await sign_in(http, school_id, login, password, totp=code, device=device)
    except ApiFailure as exc:
        if exc.code not in ("totp_required", "totp_enrolment_required"):
            raise
        if not sys.stdin.isatty():
            if exc.code == "totp_enrolment_required":  # the secret is shown only to a person at a terminal
                raise Failure("this account needs an authenticator: sign in once at a terminal to enrol it") from None
            raise Failure("this account reads concerns: pass --totp CODE or --totp-secret-file FILE") from None
        if exc.code == "totp_enrolment_required":

            def enrol(secret: str, uri: str) -> str:
                print(f"This account needs an authenticator. Add this secret to one: {secret}\n  ({uri})")
                return input("Its first one-time code: ").strip()

            signed = await sign_in(http, school_id, login, password, device=device, enrol=enrol)
        else:
            code = input("One-time code: ").strip()
            signed = await sign_in(http, school_id, login, password, totp=code, device=device)
    if step is not None:
        state["totp_step"] = step
    return signed


@contextlib.asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[tuple[dict, object]]:
    """Sign in as a new device of the store's account, and sign out at the end, whatever happens."""
    state = _state(args.store)
    password = _password(args)
    async with httpx.AsyncClient(base_url=_server(args, state), timeout=60) as http:
        device = await _signed_in(http, args, state, password)
        _load_pin(args.store, state, device)
        _save_state(args.store, state)
        try:
            yield state, device
        finally:
            _keep_pin(args.store, state, device)
            with contextlib.suppress(Exception):
                await device.call("POST", "/api/v1/sign-out")


def _load_pin(store: Path, state: dict, device) -> None:  # type: ignore[no-untyped-def]
    """The school signing key this store pinned, and the newest directory version it accepted (public
    facts), so that every device session refuses a directory that goes backwards or is signed otherwise."""
    from crypto.directory import read_directory

    if "directory_pin" in state:
        device.pinned_signing_pk = bytes.fromhex(state["directory_pin"])
    if (store / DIRECTORY).exists():
        device.signed_directory = read_directory((store / DIRECTORY).read_bytes())


def _keep_pin(store: Path, state: dict, device) -> None:  # type: ignore[no-untyped-def]
    if device.pinned_signing_pk is not None:
        state["directory_pin"] = device.pinned_signing_pk.hex()
        _save_state(store, state)
    if device.signed_directory is not None:
        (store / DIRECTORY).write_bytes(device.signed_directory.raw)


def _ws_url(server: str) -> str:
    return re.sub(r"^http", "ws", server) + "/sync"


def _client(server: str, outbox, device, keep: bool = True):  # type: ignore[no-untyped-def]
    from sync.client import SyncClient

    return SyncClient(_ws_url(server), outbox, school_id=device.school_id, device_id=device.device_id,
                      device_key=device.device_key, token=device.token or "", keep_received=keep)


# --- cairn device register / sign-in ---------------------------------------------------------------------


async def _register(args: argparse.Namespace) -> int:
    from sync.device import SAFEGUARDING, SEN, register

    if (args.store / STATE).exists():
        raise Failure(f"{args.store} already holds a device store; use another folder")
    school_id, server = _school_id(args.school), _server(args)
    password = _password(args, confirm=True)
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        registration, device = await register(http, school_id, args.code, password)
        state = {"server": server, "school_id": school_id.hex(), "login": device.login,
                 "user_id": device.user_id.hex()}
        founded = False
        if "safeguarding" in device.roles:
            if registration.totp_secret and not args.totp and args.totp_secret_file is None:
                import pyotp

                state["totp_step"] = int(time.time()) // 30
                args.totp = pyotp.TOTP(registration.totp_secret).at(state["totp_step"] * 30)
            device = await _signed_in(http, args, state, password, device)
            try:
                await device.refresh()
                if not any(k["purpose"] == SAFEGUARDING for k in device.directory.get("reader_keys", [])):
                    await device.found_groups((SAFEGUARDING, SEN))
                    founded = True
                _keep_pin(args.store, state, device)
            finally:
                with contextlib.suppress(Exception):
                    await device.call("POST", "/api/v1/sign-out")
    _save_state(args.store, state)
    print(f"registered {device.login} (roles: {', '.join(sorted(device.roles))}) in school {school_id.hex()}")
    print(f"recovery key: {registration.recovery_key}")
    print("  write it down and keep it offline: it opens this account if the password is lost; it is not shown again")
    if registration.totp_secret:
        print(f"TOTP secret: {registration.totp_secret}")
        print("  add it to an authenticator app: this account reads concerns, so every sign-in asks for a code")
    if founded:
        print("made the school's group keys (safeguarding, sen) on this device, as its founding account")
    print(f"store: {args.store} (no keys are kept there; every device verb asks for the password)")
    return 0


async def _sign_in(args: argparse.Namespace) -> int:
    if not re.fullmatch(LOGIN, args.login):
        raise Failure("a login is 1 to 200 letters, digits and . _ @ + -")
    school_id = _school_id(args.school)
    old = _state(args.store) if (args.store / STATE).exists() else None
    if old and (old["school_id"], old["login"]) != (school_id.hex(), args.login):
        raise Failure(f"{args.store} is the store of {old['login']}; use another folder")
    state = old or {"server": _server(args), "school_id": school_id.hex(), "login": args.login}
    if args.server:
        state["server"] = args.server.rstrip("/")
    password = _password(args)
    async with httpx.AsyncClient(base_url=state["server"], timeout=60) as http:
        device = await _signed_in(http, args, state, password)
        state["user_id"] = device.user_id.hex()
        with contextlib.suppress(Exception):
            await device.call("POST", "/api/v1/sign-out")
    _save_state(args.store, state)
    print(f"signed in as {device.login} (roles: {', '.join(sorted(device.roles))}) in school {school_id.hex()}")
    print(f"store: {args.store}")
    return 0


# --- cairn device log / sync -------------------------------------------------------------------------------


async def _log(args: argparse.Namespace) -> int:
    from sync.categories import default_categories
    from sync.outbox import Outbox
    from sync.protocol import b64d
    from sync.record import validate_record
    from sync.writer import ConcernWriter

    for pupil in args.pupil:
        if not re.fullmatch(r"[0-9a-f]{32}", pupil):
            raise Failure(f"a pupil id is 32 lower-case hex digits, not {pupil!r}")
    record: dict = {
        "kind": args.kind,
        "category": args.category,
        "occurred_at": args.occurred_at or dt.datetime.now().strftime("%Y-%m-%dT%H:%M"),
        "observed": args.text,
        "pupils": [{"pupil": p, "role": "subject"} for p in dict.fromkeys(args.pupil)],
    }
    if args.location:
        record["location"] = args.location
    validate_record(record, {c.id for c in default_categories()})
    async with _session(args) as (state, device):
        await device.refresh()
        known = {b64d(p["id"], "id").hex() for p in device.directory["pupils"]}
        missing = [p for p in args.pupil if p not in known]
        if missing:
            raise Failure(f"pupil {missing[0]} is not on this school's roster")
        path = args.store / f"outbox-{device.device_id.hex()}.db"
        outbox = Outbox(path)
        try:
            written = ConcernWriter(device, outbox).create(record)
            client = _client(state["server"], outbox, device, keep=False)
            try:
                await client.connect()
                report = await client.flush()
            finally:
                await client.close()
            if outbox.pending_count():
                reason = report.refused[0][1] if report.refused else "not acknowledged"
                raise Failure(
                    f"the concern was sealed into {path} but not sent ({reason}); this device session has ended, "
                    "so it cannot be sent later: log it again"
                )
        finally:
            outbox.close()
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
    print(f"logged concern {written.concern_id.hex()} (event {written.event_id.hex()}); sent {report.sent}")
    return 0


async def _sync(args: argparse.Namespace) -> int:
    from sync.outbox import Outbox

    async with _session(args) as (state, device):
        outbox = Outbox(args.store / INBOX)
        try:
            client = _client(state["server"], outbox, device)
            try:
                report = await client.sync()
            finally:
                await client.close()
            stored = len(outbox.inbox())
        finally:
            outbox.close()
    print(f"sent {report.sent}, received {report.received} ({stored} envelopes stored in {args.store})")
    for stranded in sorted(args.store.glob("outbox-*.db")):
        unsent = Outbox(stranded)
        try:
            if unsent.pending_count():
                print(f"note: {stranded.name} holds {unsent.pending_count()} entries from an ended session that were "
                      "never sent; they cannot be sent now", file=sys.stderr)
        finally:
            unsent.close()
    return 0


# --- cairn device approvals / approve ------------------------------------------------------------------


def describe(item: tuple, current: dict) -> str:
    """An item as a safeguarding lead reads it: who, which role or class, from the school's current rows."""
    from sync.protocol import b64e

    people = {a["id"]: f"{a['display_name']} ({a['login']})" for a in current.get("accounts", [])}
    classes = {c["id"]: c["label"] for c in current.get("classes", [])}
    kind = item[0]
    if kind == "account":
        return f"new staff account {people.get(b64e(item[1]), b64e(item[1]))}"
    if kind == "role":
        return f"{people.get(b64e(item[1]), b64e(item[1]))} gets the role {item[2]}"
    if kind == "teaches":
        return f"{people.get(b64e(item[2]), b64e(item[2]))} teaches {classes.get(b64e(item[1]), 'a class')}"
    if kind == "in_class":
        return f"a pupil ({b64e(item[2])[:8]}) joins {classes.get(b64e(item[1]), 'a class')}"
    if kind == "pupil":
        return f"a pupil ({b64e(item[1])[:8]}) is listed with a reader key"
    if kind == "key":
        return f"version {item[2]} of the {item[3]} reader key"
    return "a new school signing key"


async def _pending(device) -> tuple[list[tuple], dict, dict]:  # type: ignore[no-untyped-def]
    """The widenings this device finds waiting, the server's current rows, and its notes by subject."""
    from sync.directory import item_key

    items = sorted(await device.pending(), key=item_key)
    served = await device.call("GET", f"/api/v1/directory?since={device.signed_directory.version}")
    notes = {n["subject"]: n for n in (await device.call("GET", "/api/v1/approvals"))["pending"]}
    return items, served.get("current", {}), notes


def _show(items: list[tuple], current: dict, notes: dict) -> None:
    from sync.directory import item_key

    for item in items:
        note = notes.get(item_key(item), {})
        asked = note.get("requested_by") or {}
        why = f", because: {note['reason']}" if note.get("reason") else ""
        by = f" (asked by {asked.get('login', 'nobody on record')}{why})" if note else " (no request on record)"
        print(f"{item_key(item)}  {describe(item, current)}{by}")


async def _approvals(args: argparse.Namespace) -> int:
    async with _session(args) as (_, device):
        await device.refresh()
        if "safeguarding" not in device.roles:
            raise Failure("only a safeguarding keyholder approves")
        items, current, notes = await _pending(device)
        _show(items, current, notes)
        print(f"{len(items)} waiting for approval")
    return 0


async def _approve(args: argparse.Namespace) -> int:
    from sync.directory import item_key

    if not args.all and not args.item:
        raise Failure("name the items to approve with --item, or approve the whole list with --all")
    async with _session(args) as (_, device):
        await device.refresh()
        items, current, notes = await _pending(device)
        chosen = items if args.all else [i for i in items if item_key(i) in set(args.item)]
        unknown = set(args.item) - {item_key(i) for i in items}
        if unknown:
            raise Failure(f"not waiting for approval: {', '.join(sorted(unknown))}")
        _show(chosen, current, notes)
        approved = await device.approve(set(chosen)) if chosen else frozenset()
        print(f"approved {len(approved)}; the directory now lists them")
    return 0
