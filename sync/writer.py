"""Writing concerns from a Python device: a ``created`` event, and events that follow up an existing concern.

Content is made by ``sync.events.encode`` (canonical and checked) and sealed into the device's outbox by
``Device.write``. Recipients follow docs/ARCHITECTURE.md's rule from the record's category: a restricted category
goes to the safeguarding group only; any other also to each linked pupil's key and to the groups the
category names (SEN categories name ``sen``). A follow-up goes to the recipients of the envelope it
answers, under the entry key that envelope opened to, so it reaches exactly the same readers.

Used by the ``cairn device log`` verb and the demo school; the PWA has its own twin.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crypto import SecretKey
from crypto import envelope as env

from .categories import Category, default_categories
from .device import Device, now_ms
from .events import VERSION, Event, encode
from .hlc import Hlc, next_hlc
from .outbox import Outbox
from .protocol import b64d
from .record import validate_record

__all__ = ["ConcernWriter", "Written"]


@dataclass(frozen=True)
class Written:
    """What writing an event made: its concern, its id (the envelope id) and the concern's entry key."""

    concern_id: bytes
    event_id: bytes
    hlc: Hlc
    entry_key: SecretKey = field(repr=False)


class ConcernWriter:
    """One device's writer: keeps the device's hybrid logical clock so that its readings only go up."""

    def __init__(self, device: Device, outbox: Outbox, categories: Iterable[Category] | None = None) -> None:
        self.device, self.outbox = device, outbox
        self.categories = {c.id: c for c in (categories if categories is not None else default_categories())}
        self.last: Hlc | None = None

    def tick(self, seen: Iterable[Hlc] = ()) -> Hlc:
        self.last = next_hlc(self.last, now_ms(), seen)
        return self.last

    def create(self, record: Mapping[str, Any]) -> Written:
        """Check ``record`` against the school's categories, then seal its ``created`` event into the outbox."""
        validate_record(record, self.categories)
        category = self.categories[record["category"]]
        hlc = self.tick()
        content = encode(
            {
                "v": VERSION,
                "type": "created",
                "hlc": list(hlc),
                "author": self.device.user_id.hex(),
                "parents": [],
                "record": dict(record),
                "entry_key_version": 1,
            }
        )
        pupils = [bytes.fromhex(p["pupil"]) for p in record.get("pupils", [])]
        concern_id, entry_key = os.urandom(16), SecretKey.generate()
        event_id = self.device.write(
            self.outbox,
            content,
            concern_id=concern_id,
            entry_key=entry_key,
            pupil_ids=pupils,
            restricted=category.restricted,
            groups=tuple(f"group:{g}" for g in category.readers),
        )
        return Written(concern_id, event_id, hlc, entry_key)

    def follow_up(
        self,
        opened: env.Opened,
        parents: Sequence[Event | Written],
        kind: str,
        body: Mapping[str, Any],
        *,
        people: Sequence[tuple[bytes, bytes]] = (),
    ) -> Written:
        """Seal an event of type ``kind`` into the concern ``opened`` belongs to. ``parents``: the events this
        one follows (decoded ones, or ones this writer just wrote). ``people``: named need-to-know staff
        (user id, identity X25519 key from the directory), added as person recipients."""
        ids = {p.id if isinstance(p, Event) else p.event_id.hex() for p in parents}
        hlc = self.tick(p.hlc for p in parents)
        content = encode(
            {
                "v": VERSION,
                "type": kind,
                "hlc": list(hlc),
                "author": self.device.user_id.hex(),
                "parents": sorted(ids),
                **body,
            }
        )
        header = opened.header
        event_id = self.device.write(
            self.outbox,
            content,
            concern_id=header.concern_id,
            entry_key=opened.entry_key,
            entry_key_version=header.entry_key_version,  # the key's own version: an entry key grant opens it
            pupil_ids=list(header.pupil_ids),
            recipients=self.recipients_of(header, people),
        )
        return Written(header.concern_id, event_id, hlc, opened.entry_key)

    def recipients_of(
        self, header: env.Header, people: Sequence[tuple[bytes, bytes]] = ()
    ) -> list[tuple[env.Recipient, bytes]]:
        """The public key of each recipient of ``header``, from the directory (never from the envelope), and
        each of ``people`` not among them as a person recipient."""
        directory = self.device.directory
        keys = {(b64d(k["id"], "id"), k["version"]): b64d(k["public_key"], "pk") for k in directory["reader_keys"]}
        accounts = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk") for a in directory["accounts"]}
        out = []
        for r in header.recipients:
            pk = keys.get((r.id, r.version)) if r.kind == env.RECIPIENT_READER_KEY else accounts.get(r.id)
            if pk is None:
                raise LookupError("a recipient of this concern is not in the directory")
            out.append((r, pk))
        for user_id, pk in people:
            person = env.Recipient(env.RECIPIENT_PERSON, user_id, 1)
            if person not in header.recipients:
                out.append((person, pk))
        return out
