"""gateway/onewrite.py: uvicorn's httptools protocol, patched, writes each answer's head and
body with one write; unpatched it writes them apart (so the test can fail). The transport
records writes instead of sending them (the protocol and parser are uvicorn's own)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import ServerState

from gateway import onewrite


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _json_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _streamed_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    await send({"type": "http.response.body", "body": b"two"})


async def _serve(app: Any, requests: bytes) -> list[bytes]:
    config = Config(app, http="httptools", lifespan="off", log_config=None,
                    server_header=False, date_header=False)  # fmt: skip
    config.load()
    proto = httptools_impl.HttpToolsProtocol(config, ServerState(), {})
    transport = _Recorder()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(requests)
    for _ in range(50):
        await asyncio.sleep(0)
    proto.connection_lost(None)
    return transport.writes


GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture()
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httptools_impl, "RequestResponseCycle", onewrite.OneWriteCycle)


def test_unpatched_uvicorn_writes_head_and_body_apart() -> None:
    writes = asyncio.run(_serve(_json_app, GET))
    assert len(writes) == 2 and writes[1] == b'{"ok":true}'


def test_an_answer_is_one_write(patched: None) -> None:
    writes = asyncio.run(_serve(_json_app, GET))
    assert len(writes) == 1
    head, body = writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 11" in head
    assert body == b'{"ok":true}'


def test_pipelined_answers_are_one_write_each_and_in_order(patched: None) -> None:
    writes = asyncio.run(_serve(_json_app, GET * 3))
    assert len(writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(b'{"ok":true}') for w in writes)


def test_a_streamed_answer_keeps_its_parts(patched: None) -> None:
    writes = asyncio.run(_serve(_streamed_app, GET))
    joined = b"".join(writes)
    assert joined.split(b"\r\n\r\n", 1)[1] == b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"
    assert len(writes) == 2  # head with the first part, then the rest


def test_the_gateway_server_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from flk import gctune
    from gateway import server
    from gateway.settings import load_settings

    monkeypatch.setattr(httptools_impl, "RequestResponseCycle",
                        httptools_impl.RequestResponseCycle)  # restored after the test
    monkeypatch.setattr(server, "_logging", lambda settings: None)
    monkeypatch.setattr(server, "create_app", lambda settings: _json_app)
    monkeypatch.setattr(gctune, "tune", lambda: None)
    ran: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: ran.append(self))
    server.serve(load_settings("eu-west", 0))
    assert ran and httptools_impl.RequestResponseCycle is onewrite.OneWriteCycle
