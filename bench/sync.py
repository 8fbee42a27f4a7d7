"""Sync server benchmark (issue 3): ``python -m bench.sync --devices 100 --events 20000 --db sqlite``.

Starts a real ``cairn serve`` process on a free loopback port with a fresh database (``--instances N``:
N processes on one PostgreSQL database, as several app instances are run), builds a fictional school
through the HTTP API (a DSL, teachers with their classes' pupil keys, contributors), pre-seals every
envelope, then measures over real websockets, in this order:

1. ``idle_socket_kib_each``: the server's resident memory grows by this much per idle authenticated
   websocket (``--idle`` of them, extra devices of contributor accounts), with the writers and the DSL
   already connected. The idle sockets are closed afterwards.
2. ``ingest_events_per_s`` and ``ack_latency_p50_ms``/``p99``: every writer (all devices but the DSL)
   puts its share of ``--events`` in batches of ``--batch``, one put in flight each, all at once, while
   the DSL is connected and live (it receives every envelope as a push). Latency is per put, from
   sending it to its ack; the rate is envelopes acknowledged over the wall time of the whole run.
3. ``push_latency_p99_ms``: one contributor puts ``--probes`` single envelopes; each is timed from
   sending the put to the live DSL receiving it in a push, while the other writers keep putting about
   ``--background-rate`` envelopes a second.
4. ``server_rss_mb``: the server's resident memory at the end (with several instances, their sum).
5. ``pull_events_per_s`` (with ``--pull N``): a fresh device of the DSL pulls at least N envelopes.

With several instances, devices are spread over them round-robin: the DSL is on the first, the probe
writer on the last, so every probe reaches the DSL through another instance (PostgreSQL LISTEN/NOTIFY);
the idle sockets are spread too (``idle_socket_kib_each`` is the growth of all instances' memory over
all idle sockets), and the fresh device of the pull phase connects to the last instance.

Figures go to stdout as ``name: value unit`` lines; progress goes to stderr. The server and its
database are removed at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._measure import report
from bench._sync_load import client_for, close_all, ensure_live, ingest, open_idle, percentile, push_latency
from bench._sync_school import School, Writer, add_idle_devices, build_school, kdf_once_per_account, preseal
from bench._sync_server import BenchError, ServerProcess, cpu_seconds, rss_kib, running_servers
from sync.client import SyncClient, SyncError
from sync.device import ApiFailure, Device
from sync.outbox import Outbox

SETTLE_SECONDS = 2.0
PROBE_WARMUP = 5
PROBE_INTERVAL = 0.03
BACKGROUND_BATCH = 10


def _say(message: str) -> None:
    print(f"bench.sync: {message}", file=sys.stderr, flush=True)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            _say(f"warning: only {target} open files allowed (hard limit); {needed} wanted")


async def _settled_rss(servers: list[ServerProcess]) -> int:
    await asyncio.sleep(SETTLE_SECONDS)
    return _rss_kib(servers)


def _rss_kib(servers: list[ServerProcess]) -> int:
    return sum(rss_kib(s.pid) for s in servers)


def _cpu_seconds(servers: list[ServerProcess]) -> float:
    return sum(cpu_seconds(s.pid) for s in servers)


async def run(args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-bench-sync-") as folder:
        async with running_servers(args.db, Path(folder), args.instances) as servers:
            server = servers[0]  # the school is built through the first instance
            for n, one in enumerate(servers):
                _say(f"server {n} pid {one.pid} at {one.base} ({args.db})")
            # idle keep-alive connections are dropped before uvicorn's 5 s timeout closes them under a request
            limits = httpx.Limits(max_connections=32, keepalive_expiry=2.0)
            async with httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits) as http:
                with kdf_once_per_account():
                    started = time.perf_counter()
                    school = await build_school(server.database_url, http, args.devices, args.seed)
                    _say(
                        f"school built: the DSL, {len(school.writers)} writers, {len(school.pupils)} pupils "
                        f"({time.perf_counter() - started:.1f} s)"
                    )
                    started = time.perf_counter()
                    idle_devices = await add_idle_devices(http, school, args.idle) if args.idle else []
                    _say(f"{len(idle_devices)} idle devices signed in ({time.perf_counter() - started:.1f} s)")
            work = _seal(school, args)
            home = _spread(school, work, servers)
            dsl = client_for(servers[0].ws_url, school.dsl.device, school.dsl.outbox)
            clients = [dsl]
            try:
                await dsl.connect()
                await dsl.pull_all()  # live from here on: every commit reaches it as a push
                for writer in school.writers:
                    writer.client = client_for(home[id(writer)], writer.device, writer.outbox)
                    await writer.client.connect()
                    clients.append(writer.client)
                if idle_devices:
                    await _idle_phase(servers, idle_devices, results)
                await _ingest_phase(servers, work, args, results)
                failure = await ensure_live(dsl)
                if failure is not None:
                    _say(f"warning: the DSL's connection failed during ingest ({failure!r}); reconnected it")
                await _push_phase(dsl, work, args, results)
                results["server_rss_mb"] = _rss_kib(servers) / 1024
                if len(servers) > 1:
                    each = ", ".join(f"{rss_kib(s.pid) / 1024:.0f}" for s in servers)
                    _say(f"server RSS per instance: {each} MiB (server_rss_mb is their sum)")
                if args.pull:
                    await _pull_phase(servers, school, work, args, results)
            finally:
                await close_all(clients)
    return results


@dataclass
class _Work:
    ingest: list[tuple[Writer, list[str]]]  # every writer's share of --events
    background: list[tuple[Writer, list[str]]]  # all writers but the probe: envelopes for the push phase
    probe: Writer
    probes: list[tuple[bytes, str]]


def _seal(school: School, args: argparse.Namespace) -> _Work:
    """Seal every envelope the run will send, before any clock starts."""
    rng = random.Random(args.seed)
    writers = school.writers
    probe, background = writers[-1], writers[:-1]
    share = [args.events // len(writers) + (1 if n < args.events % len(writers) else 0) for n in range(len(writers))]
    push_budget_s = 3.0 + (args.probes + PROBE_WARMUP) * PROBE_INTERVAL * 2  # twice the nominal time
    pool = math.ceil(args.background_rate / len(background) * push_budget_s / BACKGROUND_BATCH) * BACKGROUND_BATCH
    started = time.perf_counter()
    work = _Work([], [], probe, [])
    for n, writer in enumerate(writers):
        sealed = preseal(writer, share[n] + (args.probes + PROBE_WARMUP if writer is probe else pool), rng)
        work.ingest.append((writer, [text for _, text in sealed[: share[n]]]))
        if writer is probe:
            work.probes = sealed[share[n] :]
        else:
            work.background.append((writer, [text for _, text in sealed[share[n] :]]))
    count = sum(len(e) for _, e in work.ingest + work.background) + len(work.probes)
    _say(f"pre-sealed {count} envelopes ({time.perf_counter() - started:.1f} s)")
    return work


def _spread(school: School, work: _Work, servers: list[ServerProcess]) -> dict[int, str]:
    """Which instance each writer connects to (keyed by ``id(writer)``): round-robin, starting after the
    DSL's (the first), with the probe on the last, so with several instances its pushes cross over."""
    home = {id(w): servers[(n + 1) % len(servers)].ws_url for n, w in enumerate(school.writers)}
    home[id(work.probe)] = servers[-1].ws_url
    return home


async def _idle_phase(servers: list[ServerProcess], devices: list[Device], results: dict[str, float]) -> None:
    before = await _settled_rss(servers)
    idle = await open_idle([s.ws_url for s in servers], devices)
    try:
        after = await _settled_rss(servers)
    finally:
        await close_all(idle)
    results["idle_socket_kib_each"] = (after - before) / len(idle)
    _say(f"{len(idle)} idle sockets: server RSS {before / 1024:.0f} MiB -> {after / 1024:.0f} MiB")


async def _ingest_phase(
    servers: list[ServerProcess], work: _Work, args: argparse.Namespace, results: dict[str, float]
) -> None:
    _say(f"ingest: {args.events} envelopes from {len(work.ingest)} devices in puts of {args.batch}")
    server_cpu, own_cpu = _cpu_seconds(servers), _own_cpu_seconds()
    timings, wall = await ingest(work.ingest, args.batch)
    server_cpu, own_cpu = _cpu_seconds(servers) - server_cpu, _own_cpu_seconds() - own_cpu
    if timings.acked != args.events:
        raise BenchError(f"{timings.acked} envelopes acknowledged as new, not {args.events}")
    results["ingest_events_per_s"] = timings.acked / wall
    results["ack_latency_p50_ms"] = percentile(timings.latencies, 50) * 1000
    results["ack_latency_p99_ms"] = percentile(timings.latencies, 99) * 1000
    who = "server" if len(servers) == 1 else f"{len(servers)} servers"
    _say(f"ingest took {wall:.1f} s; CPU busy: {who} {server_cpu / wall:.0%} of a core, bench {own_cpu / wall:.0%}")


async def _push_phase(dsl: SyncClient, work: _Work, args: argparse.Namespace, results: dict[str, float]) -> None:
    _say(f"push: {args.probes} probes while {len(work.background)} devices put ~{args.background_rate:.0f}/s")
    started = time.perf_counter()
    latencies, background_sent = await push_latency(
        dsl,
        work.probe,
        work.probes,
        work.background,
        rate=args.background_rate,
        batch=BACKGROUND_BATCH,
        interval=PROBE_INTERVAL,
        warmup=PROBE_WARMUP,
    )
    took = time.perf_counter() - started
    results["push_latency_p99_ms"] = percentile(latencies, 99) * 1000
    _say(
        f"push took {took:.1f} s, background {background_sent / took:.0f}/s; "
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


async def _pull_phase(
    servers: list[ServerProcess], school: School, work: _Work, args: argparse.Namespace, results: dict
) -> None:
    """A fresh device of the DSL (an empty store, cursor at the start) pulls at least --pull envelopes,
    keeping each one in its local store as a real device does. The school is first topped up to that
    many with envelopes from every writer (ingested, not timed)."""
    rng = random.Random(args.seed + 1)
    share = math.ceil(args.pull / len(school.writers))
    started = time.perf_counter()
    # Each writer's chain continues after the envelopes sealed for the push phase, some never sent: they
    # go first (those already stored are acknowledged again as duplicates), so no chain has a gap.
    earlier = {id(w): texts for w, texts in work.background} | {id(work.probe): [t for _, t in work.probes]}
    extra = [
        (writer, earlier.get(id(writer), []) + [text for _, text in preseal(writer, share, rng)])
        for writer in school.writers
    ]
    _say(
        f"pull: topped up with {share * len(school.writers)} envelopes, sealed in {time.perf_counter() - started:.1f} s"
    )
    for writer in school.writers:  # sealing blocked the event loop past the keepalive: connect afresh
        await writer.client.close()
        await writer.client.connect()
    await ingest(extra, args.batch)
    fresh = client_for(servers[-1].ws_url, school.dsl.device, Outbox(":memory:"))
    fresh.keep_received = True
    try:
        await fresh.connect()
        started = time.perf_counter()
        report = await fresh.pull_all()
        wall = time.perf_counter() - started
    finally:
        await fresh.close()
    if report.received < args.pull:
        raise BenchError(f"the fresh device pulled {report.received} envelopes, fewer than {args.pull}")
    results["pull_events_per_s"] = report.received / wall
    _say(f"a fresh device pulled {report.received} envelopes in {wall:.1f} s")


ORDER = [
    ("ingest_events_per_s", "per_s"),
    ("ack_latency_p50_ms", "ms"),
    ("ack_latency_p99_ms", "ms"),
    ("push_latency_p99_ms", "ms"),
    ("server_rss_mb", "MB"),
    ("idle_socket_kib_each", "KiB"),
    ("pull_events_per_s", "per_s"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync", description="Measure the sync server: ingest, acks, pushes, memory."
    )
    parser.add_argument("--devices", type=int, default=100, help="staff devices, the DSL's included (default 100)")
    parser.add_argument("--events", type=int, default=20000, help="envelopes to ingest (default 20000)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="database (default sqlite)")
    parser.add_argument(
        "--instances", type=int, default=1, help="server processes on one database (PostgreSQL only above 1; default 1)"
    )
    parser.add_argument(
        "--pull", type=int, default=0, help="then a fresh device pulls at least this many (e.g. 100000)"
    )
    parser.add_argument("--idle", type=int, default=1000, help="idle authenticated sockets (default 1000)")
    parser.add_argument("--batch", type=int, default=50, help="envelopes per put while ingesting (default 50)")
    parser.add_argument("--probes", type=int, default=200, help="single envelopes timed to their push (default 200)")
    parser.add_argument(
        "--background-rate", type=float, default=1000, help="envelopes a second put during the push test (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the fictional school's choices")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.instances < 1:
        print("Error: need --instances >= 1", file=sys.stderr)
        return 2
    if args.instances > 1 and args.db == "sqlite":
        print(
            f"Error: --instances {args.instances} needs --db postgres: a SQLite database is served by one instance",
            file=sys.stderr,
        )
        return 2
    if args.devices < 3 or args.events < 1 or args.idle < 0 or not 1 <= args.batch <= 256 or args.probes < 1:
        print("Error: need --devices >= 3, --events >= 1, --idle >= 0, --batch 1..256, --probes >= 1", file=sys.stderr)
        return 2
    _raise_open_files(args.idle + 4 * args.devices + 1024)
    load = os.getloadavg()[0]
    if load > 0.5:
        _say(f"warning: load average {load:.1f} before starting: other processes share the CPU, figures may be low")
    try:
        results = asyncio.run(_main(args))
    except KeyboardInterrupt:
        print("Error: interrupted; the server was stopped and its files removed", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, ApiFailure, SyncError, OSError) as exc:
        print(f"Error: talking to the server: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name, unit in ORDER:
        if name in results:
            report(name, results[name], unit)
    return 0


async def _main(args: argparse.Namespace) -> dict[str, float]:
    """``run``, with SIGTERM treated like Ctrl-C so the server and temporary files are cleaned up."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run(args)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


if __name__ == "__main__":
    sys.exit(main())
