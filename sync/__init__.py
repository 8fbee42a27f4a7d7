"""Cairn's sync layer, shared by both ends. May import crypto/ only.

Exported here: the concern record, its events, their hybrid logical clock and the fold (docs/PROTOCOL.md
section 8), all pure functions over plain data with no I/O. The protocol messages and the Python client live in
their own modules beside these.
"""

from . import categories, events, record
from .categories import Category, default_categories, load_categories, restricted_ids
from .events import Event, decode, encode
from .fold import fold, frontier
from .hlc import Hlc, next_hlc, order_key
from .record import ClockSkew, InvalidEvent, SyncError, UnsupportedEventVersion, validate_record

__all__ = [
    "categories",
    "events",
    "record",
    "Category",
    "default_categories",
    "load_categories",
    "restricted_ids",
    "Event",
    "decode",
    "encode",
    "fold",
    "frontier",
    "Hlc",
    "next_hlc",
    "order_key",
    "ClockSkew",
    "InvalidEvent",
    "SyncError",
    "UnsupportedEventVersion",
    "validate_record",
]
