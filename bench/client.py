"""The load generators' HTTP client (bench/gateway.py, bench/e2e.py): minimal HTTP/1.1 with
keep-alive on asyncio (uvloop), one request in flight per connection, requests encoded to bytes
before the clock starts.

A general-purpose client (aiohttp) spent about as much CPU per request as the gateway it
measured, on the same cores; this one parses only the status line, the framing headers
(Content-Length, chunked Transfer-Encoding, Connection: close) and returns the body bytes.

Open loop (`open_loop`): request i starts at its scheduled time whatever the answers, a request
never waits for a free connection (`Pool` opens another), and latency is taken from the
scheduled time, so a stall of the system under test is not hidden (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvloop

from flk import gctune

T = TypeVar("T")
Endpoint = tuple[str, int]  # (host, port)

# What a failed exchange raises: connection refused/reset, a closed connection mid-answer, an
# unparsable answer, the pool's timeout.
ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ValueError,
    TimeoutError,
)


def endpoint(url: str) -> Endpoint:
    """("127.0.0.1", 20080) from "http://127.0.0.1:20080"."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def post(path: str, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """One HTTP/1.1 POST request, encoded."""
    head = [f"POST {path} HTTP/1.1", "Host: bench"]
    head += [f"{k}: {v}" for k, v in headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Conn:
    """One keep-alive connection; opened on the first request, one request at a time."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @property
    def open(self) -> bool:
        return self.writer is not None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Write `request`, read the answer: (status, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader = self.reader
        assert reader is not None
        self.writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            body = await self._chunked(reader)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:  # no framing: the body runs to the end of the connection
            body = await reader.read()
            close = True
        if close:
            self.close()
        return status, body

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Idle keep-alive connections per endpoint. A request takes an idle one or opens a new
    one (it never waits for a free connection: that would hide latency in an open loop) and
    gives it back afterwards unless it failed or the server closed it."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self._idle: dict[Endpoint, list[Conn]] = {}

    def warm(self, ep: Endpoint, n: int) -> None:
        """Keep `n` (not yet connected) connections ready for `ep`."""
        self._idle.setdefault(ep, []).extend(Conn(ep[1], ep[0]) for _ in range(n))

    async def send(self, ep: Endpoint, request: bytes) -> tuple[int, bytes]:
        idle = self._idle.setdefault(ep, [])
        conn = idle.pop() if idle else Conn(ep[1], ep[0])
        reused = conn.open
        try:
            answer = await self._send(conn, request)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            conn.close()
            # A kept-alive connection the server closed while idle (uvicorn: 5 s) fails at
            # once with no answer: the request never reached the application, so it is sent
            # again on a new connection, as HTTP clients do. Any other failure is the result.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            conn = Conn(ep[1], ep[0])
            try:
                answer = await self._send(conn, request)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        if conn.open:
            idle.append(conn)
        return answer

    async def _send(self, conn: Conn, request: bytes) -> tuple[int, bytes]:
        if self.timeout is None:
            return await conn.send(request)
        async with asyncio.timeout(self.timeout):
            return await conn.send(request)

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


async def open_loop(
    schedule: Sequence[float],
    one: Callable[[int, float], Coroutine[Any, Any, None]],
    start: float | None = None,
) -> None:
    """Start `one(i, due)` at `due = start + schedule[i]` (time.monotonic(); start defaults to
    now) whatever the earlier answers did, then wait for all of them."""
    t0 = time.monotonic() if start is None else start
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    for i, offset in enumerate(schedule):
        due = t0 + offset
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, due)))
    await asyncio.gather(*tasks)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a fresh uvloop event loop, with the services' collector settings (the
    prepared requests, made before, are frozen out of every collection: flk/gctune.py)."""
    gctune.tune()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
