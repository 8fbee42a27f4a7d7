"""The fuzz run: ``python -m bench.fuzz [--cases N] [--db sqlite|postgres] [--seed S]``.

Runs the fuzz targets of tests/fuzz/ (the same strategies and checks as the fuzz tests, many more cases):
the websocket codec, cursors, envelopes, grants, roster entries, directory versions, staff files and MIS pupil
files in this process, and HTTP requests to every route and frames over a real socket (before auth, after auth,
in a hand-over) against a real server on a database of its own, with a trap on the server's log. Prints
``name: value unit`` lines:

- ``cases``: inputs checked, at least ``--cases`` (default 100,000), and ``cases_<target>`` for each target;
- ``crashes``: inputs whose check failed: an exception other than the parser's one typed error, a refusal
  without a documented code (docs/PROTOCOL.md 1.1, 9.6, 10.2, 10.3), or an answer other than the one
  predicted (the first few are shown on stderr, with the input);
- ``5xx``: HTTP answers of 500 or more;
- ``tracebacks`` and ``error_lines``: log records of the server (and of this process) carrying a traceback,
  and at ERROR or above;
- ``cases_per_s``: over the whole run.

All but ``cases`` must be 0. The exit status is 1 when one is not. Nothing is asserted in the test suite
from these figures; the fuzz tests run the same checks with few cases each.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import frames, mis, sealed, staff
from tests.fuzz.http import check_response, requests, send
from tests.fuzz.junk import mutations
from tests.fuzz.live import LiveFuzz, LogTrap, live_fuzz
from tests.fuzz.sockets import (
    Sockets,
    check_hand_over_frame_on_socket,
    check_live_frame,
    check_pre_auth_frame,
    dsl_puts,
    socket_frames,
)

SHOWN = 3  # failing inputs shown per target


@dataclass
class Tally:
    name: str
    cases: int = 0
    crashes: int = 0
    labels: Counter[str] = field(default_factory=Counter)

    def record(self, checks: tuple[Callable[[object], str], ...], value: object) -> None:
        """Run each check on one drawn input: each is a case."""
        for check in checks:
            self.cases += 1
            try:
                self.labels[check(value)] += 1
            except Exception as exc:  # AssertionError (a broken property) or a parser's crash: both count
                self.crashes += 1
                if self.crashes <= SHOWN:
                    print(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}\n  input: {value!r:.400}",
                          file=sys.stderr, flush=True)


def _drive(tally: Tally, strategy: st.SearchStrategy, one: Callable[[object], None], n: int, start: int,
           per_input: int = 1) -> None:
    """Run ``one`` on inputs drawn from ``strategy`` until ``n`` cases (``per_input`` each) were checked;
    generation only: nothing fails, nothing shrinks. Again with the next seed while hypothesis stops early."""
    attempt = 0
    while tally.cases < n and attempt < 20:
        want = -(-(n - tally.cases) // per_input)

        @seed(start + attempt)
        @settings(max_examples=want, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(value: object) -> None:
            one(value)

        run()
        attempt += 1


Target = tuple[str, st.SearchStrategy, tuple[Callable[[object], str], ...], int]  # name, inputs, checks, weight


def offline_targets() -> list[Target]:
    """What runs in this process. A frame is read by each of the three frame parsers (three cases)."""
    return [
        ("frames", frames.frames, (frames.check_client_frame, frames.check_hand_over_frame,
                                   frames.check_server_frame), 30),
        ("cursors", frames.cursors, (frames.check_cursor,), 10),
        ("envelopes", st.tuples(sealed.envelope_cases(), mutations), (lambda v: sealed.check_envelope(*v),), 10),
        ("grants", st.tuples(sealed.grant_cases(), mutations), (lambda v: sealed.check_grant(*v),), 10),
        ("roster_entries", st.tuples(sealed.roster_cases(), mutations),
         (lambda v: sealed.check_roster_entry(*v),), 10),
        ("directories", st.tuples(sealed.directory_cases(), mutations), (lambda v: sealed.check_directory(*v),), 8),
        ("staff_files", staff.staff_files(), (staff.check_staff_csv,), 5),
        ("mis_files", mis.mis_files(), (mis.check_mis_file,), 5),
    ]


def live_targets(live: LiveFuzz, http: httpx.Client, sockets: Sockets, statuses: Counter[int]) -> list[Target]:
    """What runs against the live server; every HTTP status is counted in ``statuses``."""
    token = live.dsl.device.token or ""

    def http_check(request: object) -> str:
        response = send(http, request, token)  # type: ignore[arg-type]
        statuses[response.status_code] += 1
        return check_response(request, response)  # type: ignore[arg-type]

    return [
        ("http", requests(live.known), (http_check,), 8),
        ("frames_before_auth", socket_frames, (lambda m: check_pre_auth_frame(sockets, m),), 3),  # type: ignore[arg-type]
        ("frames_after_auth", st.one_of(socket_frames, dsl_puts(live)),
         (lambda m: check_live_frame(sockets, m),), 3),  # type: ignore[arg-type]
        ("frames_hand_over", socket_frames, (lambda m: check_hand_over_frame_on_socket(sockets, m),), 3),  # type: ignore[arg-type]
    ]


@contextlib.contextmanager
def _http(base: str) -> Iterator[httpx.Client]:
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    with httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(socket_options=nodelay)) as client:
        yield client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="inputs to check in all (default 100,000)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite", help="the live server's database")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="hypothesis seed (default: the time)")
    args = parser.parse_args(argv)
    print(f"seed {args.seed}, database {args.db}", file=sys.stderr)

    started = time.perf_counter()
    tallies: list[Tally] = []
    with tempfile.TemporaryDirectory() as folder, live_fuzz(args.db, Path(folder)) as live:
        with _http(live.base) as http:
            sockets, statuses = Sockets(live), Counter[int]()
            try:
                targets = offline_targets() + live_targets(live, http, sockets, statuses)
                total = sum(weight for *_, weight in targets)
                for name, strategy, checks, weight in targets:
                    tally = Tally(name)
                    n = -(-args.cases * weight // total)
                    _drive(tally, strategy, lambda v, c=checks, t=tally: t.record(c, v), n, args.seed, len(checks))
                    tallies.append(tally)
                    print(f"{name}: {tally.cases} cases, {tally.crashes} crashes, "
                          f"{dict(tally.labels.most_common(6))}", file=sys.stderr, flush=True)
            finally:
                sockets.close()
        trap: LogTrap = live.trap
    elapsed = time.perf_counter() - started
    # the server has stopped: everything it logged is in the trap
    cases = sum(t.cases for t in tallies)
    crashes = sum(t.crashes for t in tallies)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    for t in tallies:
        print(f"cases_{t.name}: {t.cases} cases")
    figures = [("cases", cases, "cases"), ("crashes", crashes, "cases"), ("5xx", server_errors, "responses"),
               ("tracebacks", trap.tracebacks(), "records"), ("error_lines", len(trap.bad), "records")]
    for name, value, unit in figures:
        print(f"{name}: {value} {unit}")
    print(f"cases_per_s: {cases / elapsed:.0f} cases/s", flush=True)
    if trap.bad:
        print("the server logged:\n" + "\n".join(trap.bad[:SHOWN]), file=sys.stderr)
    return 0 if (crashes, server_errors, len(trap.bad)) == (0, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
