"""bench/client.py against a tiny local HTTP server: a kept-alive connection the server closed
while idle is retried once on a new connection; a failure mid-answer is not."""

from __future__ import annotations

import asyncio

import pytest

from bench import client

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _serve(close_after_answer: bool, partial: bool = False) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(4)  # the body of client.post("/", b"body")
        writer.write(ANSWER[:20] if partial else ANSWER)
        await writer.drain()
        if close_after_answer or partial:
            writer.close()  # as uvicorn does with a keep-alive connection after its timeout
            return
        await reader.read()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_connection_closed_while_idle_is_retried_once() -> None:
    async def main() -> list[tuple[int, bytes]]:
        server, port = await _serve(close_after_answer=True)
        pool = client.Pool(timeout=5)
        try:
            first = await pool.send(("127.0.0.1", port), client.post("/", b"body"))
            await asyncio.sleep(0.1)  # the server has closed the idle connection by now
            second = await pool.send(("127.0.0.1", port), client.post("/", b"body"))
            return [first, second]
        finally:
            pool.close()
            server.close()

    assert client.run(main()) == [(200, b"ok"), (200, b"ok")]


def test_an_answer_cut_short_is_an_error() -> None:
    async def main() -> None:
        server, port = await _serve(close_after_answer=False, partial=True)
        pool = client.Pool(timeout=5)
        try:
            await pool.send(("127.0.0.1", port), client.post("/", b"body"))
        finally:
            pool.close()
            server.close()

    with pytest.raises(asyncio.IncompleteReadError):
        client.run(main())
