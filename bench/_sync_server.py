"""The sync benchmark's servers: real ``cairn serve`` processes on free loopback ports, with a database
of their own (a fresh SQLite file, or a PostgreSQL database made for the run and dropped after it); on
PostgreSQL there may be several processes on the one database, as several app instances are run.

The process is the one production runs (the Procfile's ``cairn serve``), started as
``python -m server.cli serve`` so the venv's interpreter is used. They are stopped, and the database and
temporary folder removed, however the benchmark ends (Ctrl-C included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["BenchError", "ServerProcess", "running_servers", "rss_kib", "cpu_seconds", "POSTGRES_DEFAULT"]

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
READY_SECONDS = 30.0


class BenchError(Exception):
    """The benchmark could not run; the message says which step failed."""


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    base: str
    ws_url: str
    database_url: str
    log_path: Path


def rss_kib(pid: int) -> int:
    """The resident set size of a process, from ``/proc/<pid>/status`` (Linux only)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS line in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, from ``/proc/<pid>/stat``, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(database_url: str, port: int) -> dict[str, str]:
    """The caller's environment without any ``CAIRN_`` setting of its own (the server refuses unknown
    ones and must not pick up a developer's database), plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update({"CAIRN_DATABASE_URL": database_url, "CAIRN_HOST": "127.0.0.1", "CAIRN_PORT": str(port)})
    return env


def _migrate(env: dict[str, str]) -> None:
    """Run ``cairn migrate`` where the CLI has that verb; without it the server makes its tables at start."""
    done = subprocess.run([sys.executable, "-m", "server.cli", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0 and "invalid choice: 'migrate'" not in done.stderr:
        raise BenchError(f"cairn migrate failed: {done.stderr.strip()[-500:]}")


@contextlib.asynccontextmanager
async def _database(kind: str, folder: Path) -> AsyncIterator[str]:
    """A SQLAlchemy URL for an empty database of this run's own."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'cairn.db'}"
        return
    import asyncpg

    admin = os.environ.get("CAIRN_TEST_POSTGRES_URL", "") or POSTGRES_DEFAULT
    try:
        conn = await asyncpg.connect(admin, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"connecting to PostgreSQL at {admin.split('@')[-1]} (set CAIRN_TEST_POSTGRES_URL): {exc}"
        ) from None
    name = f"cairn_bench_{uuid.uuid4().hex[:12]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0]
        yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _die_with_parent() -> None:
    """In the child before exec: if the benchmark is killed outright, the kernel stops the server too."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def running_servers(kind: str, folder: Path, instances: int = 1) -> AsyncIterator[list[ServerProcess]]:
    """Start ``instances`` ``cairn serve`` processes, each on a free loopback port, against one fresh
    database (several only on PostgreSQL: they hear each other's commits through LISTEN/NOTIFY); wait
    for every ``/healthz``."""
    if instances > 1 and kind != "postgres":
        raise BenchError("SQLite is served by one instance; several instances need --db postgres")
    async with _database(kind, folder) as database_url:
        _migrate(_server_env(database_url, _free_port()))
        async with contextlib.AsyncExitStack() as stack:
            servers = [
                await stack.enter_async_context(_one_server(database_url, folder, n, instances))
                for n in range(instances)
            ]
            yield servers


@contextlib.asynccontextmanager
async def _one_server(database_url: str, folder: Path, n: int, instances: int) -> AsyncIterator[ServerProcess]:
    port = _free_port()
    log_path = folder / ("server.log" if instances == 1 else f"server-{n}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_server_env(database_url, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops the server itself
            preexec_fn=_die_with_parent,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_ready(process, base, log_path)
        yield ServerProcess(process.pid, base, f"ws://127.0.0.1:{port}/sync", database_url, log_path)
    except Exception:
        _stop(process)
        tail = log_path.read_text(errors="replace")[-3000:].strip()
        if tail:
            print(f"bench.sync: the log of server {n} ends:\n{tail}", file=sys.stderr)
        raise
    finally:
        _stop(process)


async def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise BenchError(f"the server exited with status {process.returncode} while starting:\n{tail}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise BenchError(f"the server did not answer /healthz within {READY_SECONDS:.0f} s (log: {log_path})")
