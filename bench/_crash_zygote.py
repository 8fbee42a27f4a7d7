"""The crash harness's process starter: ``python -m bench._crash_zygote``, driven over its stdin.

Starting a server takes about a second, most of it importing Python modules; a crash run starts a
server after every crash, hundreds of times. So this process imports the server and the client once
and then forks a fresh child for each run (as prefork servers and Android's zygote do). A child is a
real, separate process: it opens its own database connections, event loop and listening socket, and a
SIGKILL ends it like any other. It never opens anything before the fork: nothing is shared but
imported code.

Commands are JSON lines: ``{"tag", "role": "server"|"client", "env", "spec", "log"}``. For each the
process answers ``started TAG PID`` and, when that child has ended, ``exited PID CODE`` (CODE as
``subprocess`` gives it: negative for a signal, -9 for SIGKILL). A ``server`` child serves the app on
``spec["port"]`` with the SQLite ``synchronous`` mode in ``spec`` (FULL is exactly ``cairn serve``'s
app, ``create_app(Settings.from_env())``); a ``client`` child runs ``bench._crash_client.run_client``.
Both read ``CAIRN_TEST_CRASH_AT`` from ``env`` if the harness armed them. At end of input every child
still running is killed. Linux only (``fork``, ``prctl``).

``Zygote`` is the harness's side: it starts this process and turns the answers into ``Child`` objects
whose ``exited`` future resolves with the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import select
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Zygote", "Child"]

ROOT = Path(__file__).resolve().parents[1]

PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _serve(spec: dict) -> int:
    import uvicorn

    from server.app import app_from_env, create_app
    from server.db import make_engine
    from server.services import Services
    from server.settings import Settings

    if spec["synchronous"] == "FULL":
        app = app_from_env()
    else:  # the control: the same app on an engine with a weaker synchronous mode
        settings = Settings.from_env()
        engine = make_engine(settings.database_url, synchronous=spec["synchronous"])
        app = create_app(settings, Services(settings, engine))
    uvicorn.run(app, host="127.0.0.1", port=spec["port"], log_level="warning", ws_max_size=8 * 1024 * 1024)
    return 0


def _client(spec: dict) -> int:
    from bench._crash_client import run_client

    return asyncio.run(run_client(spec))


def _child(command: dict) -> None:
    code = 70
    try:
        _die_with_parent(signal.SIGKILL)
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.update(command["env"])
        code = _serve(command["spec"]) if command["role"] == "server" else _client(command["spec"])
    except BaseException:  # noqa: B036 - the child must never return into the zygote's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(children: set[int], block: bool = False) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        _say(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


def main() -> None:
    _die_with_parent(signal.SIGKILL)
    import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401 - dialects load on first use, not at import
    import sqlalchemy.dialects.sqlite.aiosqlite  # noqa: F401
    import uvicorn.protocols.http.auto  # noqa: F401 - the protocol classes uvicorn picks
    import uvicorn.protocols.websockets.auto  # noqa: F401

    import bench._crash_client  # noqa: F401 - imported once here, so each child starts at once
    import server.app  # noqa: F401

    children: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.005)
        if readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                command = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(command)
                children.add(pid)
                _say(f"started {command['tag']} {pid}")
        _reap(children)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(children, block=True)


@dataclass
class Child:
    pid: int
    exited: asyncio.Future[int]

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


class Zygote:
    """The harness's handle on a running zygote process (an async context manager)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._tags = itertools.count(1)
        self._started: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}

    async def __aenter__(self) -> Zygote:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        with open(self.log, "ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench._crash_zygote",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=ROOT,
                start_new_session=True,  # Ctrl-C reaches the harness, which ends the zygote itself
            )
        self._reader = asyncio.create_task(self._read(), name="crash-zygote-read")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 30)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        await self._reader
        for future in [*self._started.values(), *self._exits.values()]:
            if not future.done():
                future.cancel()

    async def spawn(self, role: str, env: dict[str, str], spec: dict, log: Path) -> Child:
        """Fork a ``server`` or ``client`` child; returns once it runs."""
        tag = str(next(self._tags))
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._started[tag] = started
        command = {"tag": tag, "role": role, "env": env, "spec": spec, "log": str(log)}
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())
        await self._proc.stdin.drain()
        pid = await asyncio.wait_for(started, 30)
        return Child(pid, self._exits[pid])

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        loop = asyncio.get_running_loop()
        async for raw in self._proc.stdout:
            word, first, second = raw.decode().split()
            if word == "started":
                self._exits[int(second)] = loop.create_future()
                self._started.pop(first).set_result(int(second))
            elif word == "exited" and int(first) in self._exits:
                self._exits[int(first)].set_result(int(second))


if __name__ == "__main__":
    main()
