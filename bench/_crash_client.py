"""The crash harness's client device: a child process that the harness, or the device itself, kills.

It is one staff device of the harness's fictional school (its key, session and recipients come from a
JSON file the harness wrote; fictional, in the run's temporary folder). A run writes concerns into the
device's on-disk outbox (``sync.outbox``: SQLite, ``synchronous=FULL``) until the device's chain
counter reaches ``target``, a few at a time, and flushes the outbox over the sync websocket after each
few. Because the target is a chain counter, a run killed anywhere and started again with the same
target writes exactly the envelopes still missing: no note twice, none skipped.

Every ack is appended to the ack log (``<envelope id hex> <seq>`` lines) before the outbox lets its
envelopes go, so the harness knows every promise the server made to this device, even one the
device died before acting on.

Its fault points (``server._faults.point``, armed by ``CAIRN_TEST_CRASH_AT`` like the server's):

``client.mid_queue``
    an envelope is sealed and its outbox transaction open, not committed.
``client.after_put``
    a put has been sent; its ack not yet read (the server may or may not commit it).
``client.before_ack_saved``
    an ack arrived and is logged; the outbox still holds its envelopes.

Exit codes: 0 the target is reached and the outbox is empty; 3 the server went away; 4 the server
refused the head of the outbox (it stays there).
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from crypto import SigningKey
from crypto import envelope as env
from server._faults import point
from sync.client import SyncClient, SyncError
from sync.device import Device
from sync.outbox import ChainState, Outbox
from sync.protocol import b64d, b64e

__all__ = ["run_client", "device_file", "EXIT_DONE", "EXIT_SERVER_GONE", "EXIT_REFUSED"]

EXIT_DONE, EXIT_SERVER_GONE, EXIT_REFUSED = 0, 3, 4


class LoggedOutbox(Outbox):
    """An outbox with the client's fault points, and an ack log written before the outbox forgets."""

    def __init__(self, path: str | Path, ack_log: str | Path) -> None:
        super().__init__(path)
        self._log = os.open(ack_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def queue(self, seal: Callable[[ChainState], tuple[bytes, bytes, bytes]]) -> bytes:
        def sealing(chain: ChainState) -> tuple[bytes, bytes, bytes]:
            made = seal(chain)
            point("client.mid_queue")
            return made

        return super().queue(sealing)

    def acknowledged(self, envelope_ids: Iterable[bytes]) -> None:
        ids = list(envelope_ids)
        os.write(self._log, b"".join(i.hex().encode() + b"\n" for i in ids))
        point("client.before_ack_saved")
        super().acknowledged(ids)

    def close(self) -> None:
        os.close(self._log)
        super().close()


class _Client(SyncClient):
    async def connect(self) -> dict:
        ready = await super().connect()
        assert self._ws is not None
        send = self._ws.send

        async def sending(message, *args, **kwargs):  # type: ignore[no-untyped-def]
            await send(message, *args, **kwargs)
            if isinstance(message, str) and message.startswith('{"type":"put"'):
                point("client.after_put")

        self._ws.send = sending  # type: ignore[method-assign]
        return ready


def device_file(path: Path, ws_url: str, device: Device, recipients: dict[bytes, list]) -> None:  # type: ignore[type-arg]
    """Write what a child needs to act as ``device``: ids, the device key's seed, the session token,
    and each pupil's recipients. Fictional and test-only: real devices never write their key out."""
    path.write_text(
        json.dumps(
            {
                "ws_url": ws_url,
                "school_id": b64e(device.school_id),
                "user_id": b64e(device.user_id),
                "device_id": b64e(device.device_id),
                "login": device.login,
                "device_seed": b64e(bytes(device.device_key)),
                "token": device.token,
                "pupils": {
                    b64e(pupil): [[r.kind, b64e(r.id), r.version, b64e(pk)] for r, pk in chosen]
                    for pupil, chosen in recipients.items()
                },
            }
        )
    )
    path.chmod(0o600)


async def run_client(spec: dict) -> int:
    """One run of the device: ``spec`` names the device file, outbox, ack log, target, batch and seed."""
    data = json.loads(Path(spec["device"]).read_text())
    school_id, device_id = b64d(data["school_id"], "school_id"), b64d(data["device_id"], "device_id")
    key = SigningKey(b64d(data["device_seed"], "seed"))
    # Writing needs only the ids, the device key and the recipients: no identity keys, no HTTP.
    device = Device(None, school_id, b64d(data["user_id"], "user_id"), data["login"], None, device_id, key, set())  # type: ignore[arg-type]
    recipients = {
        b64d(p, "pupil"): [(env.Recipient(k, b64d(i, "id"), v), b64d(pk, "pk")) for k, i, v, pk in chosen]
        for p, chosen in data["pupils"].items()
    }
    pupils = sorted(recipients)
    rng = random.Random(spec["seed"])
    outbox = LoggedOutbox(spec["outbox"], spec["ack_log"])
    client = _Client(
        data["ws_url"],
        outbox,
        school_id=school_id,
        device_id=device_id,
        device_key=key,
        token=data["token"],
        keep_received=False,
        batch_size=spec["batch"],
    )
    try:
        await client.connect()
        while True:
            have = outbox.chain().counter
            for _ in range(min(rng.randint(1, 3), spec["target"] - have)):
                pupil = rng.choice(pupils)
                note = f"fictional crash-test note by {data['login']}: seemed tired after lunch, no further concern"
                device.write(outbox, note.encode(), pupil_ids=[pupil], recipients=recipients[pupil])
            report = await client.flush()
            if report.refused:
                return EXIT_REFUSED
            if outbox.chain().counter >= spec["target"] and outbox.pending_count() == 0:
                return EXIT_DONE
    except (SyncError, ConnectionClosed, OSError, TimeoutError) as exc:
        ws = client._ws
        closed = f" (close code {ws.close_code}, {ws.close_reason!r})" if ws is not None else ""
        print(f"client {os.getpid()}: the server went away: {exc!r}{closed}", file=sys.stderr)
        return EXIT_SERVER_GONE
    finally:
        await client.close()
        outbox.close()
