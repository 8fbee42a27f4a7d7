"""The sync benchmark's load: devices on real websockets putting pre-sealed envelopes, a live DSL
receiving pushes, and idle authenticated sockets.

Puts go through ``SyncClient``'s request path (its connection, request ids and reader task) with
envelopes already sealed and encoded, so the clock measures the network and the server, not sealing.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass, field

from sync.client import SyncClient
from sync.device import Device
from sync.outbox import Outbox

from ._sync_school import Writer, envelope_id
from ._sync_server import BenchError

__all__ = [
    "Timings",
    "client_for",
    "put",
    "ingest",
    "push_latency",
    "ensure_live",
    "open_idle",
    "close_all",
    "percentile",
]

CONNECT_CONCURRENCY = 50
MIN_PROBES = 20  # fewest probes a push latency is reported from, when the background runs out early


@dataclass
class Timings:
    acked: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, one per put


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (``pct`` from 0 to 100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def client_for(url: str, device: Device, outbox: Outbox) -> SyncClient:
    """A client for a signed-in device; received envelopes only move its cursor (nothing is kept)."""
    return SyncClient(
        url,
        outbox,
        school_id=device.school_id,
        device_id=device.device_id,
        device_key=device.device_key,
        token=device.token or "",
        keep_received=False,
    )


async def put(client: SyncClient, who: str, envelopes: list[str], timings: Timings | None = None) -> None:
    """One put of already-encoded envelopes; a refusal stops the benchmark, naming the device."""
    start = time.perf_counter()
    reply = await client._request({"type": "put", "envelopes": envelopes})
    if timings is not None:
        timings.latencies.append(time.perf_counter() - start)
    if reply["type"] != "ack":
        raise BenchError(f"{who}: the server refused a put: {reply.get('code')}: {reply.get('detail')}")
    if timings is not None:
        timings.acked += sum(1 for r in reply["results"] if not r["duplicate"])


async def ingest(work: list[tuple[Writer, list[str]]], batch: int) -> tuple[Timings, float]:
    """Every writer puts its envelopes in batches, one put in flight each, all at once; returns the
    timings and the wall time from the first put to the last ack."""
    timings = Timings()

    async def drive(writer: Writer, envelopes: list[str]) -> None:
        assert writer.client is not None
        for start in range(0, len(envelopes), batch):
            await put(writer.client, writer.name, envelopes[start : start + batch], timings)

    start = time.perf_counter()
    await asyncio.gather(*(drive(w, e) for w, e in work))
    return timings, time.perf_counter() - start


async def push_latency(
    dsl: SyncClient,
    probe: Writer,
    probes: list[tuple[bytes, str]],
    background: list[tuple[Writer, list[str]]],
    *,
    rate: float,
    batch: int,
    interval: float,
    warmup: int,
) -> tuple[list[float], int]:
    """Put ``probes`` one envelope at a time from ``probe``, one every ``interval`` seconds (or as soon
    as the previous ack comes, if later), while the ``background`` writers put about ``rate`` envelopes
    a second in all. Each probe is timed from sending its put to the live DSL receiving it in a push.
    If the background runs out of envelopes first (slow acks), probing stops there; at least half the
    probes (and ``MIN_PROBES``) must have been sent. Returns the latencies (warm-up probes left out) and
    how many background envelopes were put."""
    loop = asyncio.get_running_loop()
    waiting: dict[bytes, tuple[float, asyncio.Future[float]]] = {}

    def received(items: list[tuple[int, int, bytes]]) -> None:
        now = time.perf_counter()
        if not waiting:
            return
        for _, _, body in items:
            found = waiting.pop(envelope_id(body), None)
            if found is not None and not found[1].done():
                found[1].set_result(now - found[0])

    stop = asyncio.Event()
    sent = [0]

    async def write_steadily(writer: Writer, envelopes: list[str], offset: float) -> None:
        assert writer.client is not None
        every = batch * len(background) / rate
        due = loop.time() + offset * every
        for start in range(0, len(envelopes), batch):
            await asyncio.sleep(max(0.0, due - loop.time()))
            if stop.is_set():
                return
            await put(writer.client, writer.name, envelopes[start : start + batch])
            sent[0] += len(envelopes[start : start + batch])
            due += every

    previous, dsl.on_received = dsl.on_received, received
    writers = [asyncio.create_task(write_steadily(w, e, n / len(background))) for n, (w, e) in enumerate(background)]
    futures: list[asyncio.Future[float]] = []
    try:
        await asyncio.sleep(1.0)  # let the background reach its rate
        assert probe.client is not None
        due = loop.time()
        for probe_id, text in probes:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += interval
            if all(w.done() for w in writers):  # the background has stopped: later probes would not count
                break
            future: asyncio.Future[float] = loop.create_future()
            waiting[probe_id] = (time.perf_counter(), future)
            futures.append(future)
            await put(probe.client, probe.name, [text])
        ran_out = len(futures) < len(probes)
        done, late = await asyncio.wait(futures, timeout=10)
        if late:
            state = "open" if _is_open(dsl) else "closed"
            raise BenchError(
                f"{len(late)} probes were acknowledged but not pushed to the DSL within 10 s (its socket is {state})"
            )
        if ran_out and len(futures) - warmup < max(MIN_PROBES, (len(probes) - warmup) // 2):
            raise BenchError(
                f"the background writers ran out of pre-sealed envelopes after {len(futures)} of {len(probes)} probes"
            )
        if ran_out:
            print(
                f"bench.sync: warning: the background writers ran out of pre-sealed envelopes; "
                f"{len(futures) - warmup} probes measured, not {len(probes) - warmup} (acks were slow)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
        dsl.on_received = previous
    for task in writers:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return [f.result() for f in futures[warmup:]], sent[0]


async def ensure_live(client: SyncClient) -> BaseException | None:
    """Reconnect and pull to the end if the client's connection has failed; returns why it failed."""
    reader = client._reader
    if reader is not None and not reader.done():
        return None
    failure = reader.exception() if reader is not None and not reader.cancelled() else None
    await client.close()
    await client.connect()
    await client.pull_all()
    return failure or ConnectionError("the connection closed")


def _is_open(client: SyncClient) -> bool:
    return client._reader is not None and not client._reader.done()


async def open_idle(urls: list[str], devices: list[Device]) -> list[SyncClient]:
    """Authenticate one websocket per device, spread over ``urls`` (the instances) round-robin, and leave
    it idle (they never pull, so nothing is pushed)."""
    shared = Outbox(":memory:")  # never written: an idle contributor receives nothing
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(n: int, device: Device) -> SyncClient:
        client = client_for(urls[n % len(urls)], device, shared)
        async with gate:
            await client.connect()
        return client

    return list(await asyncio.gather(*(one(n, d) for n, d in enumerate(devices))))


async def close_all(clients: list[SyncClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
