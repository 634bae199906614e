"""A response's head and body in one write.

uvicorn's httptools protocol writes a response's status line and headers when the app sends
`http.response.start` and the body when it sends `http.response.body`: two writes, and with
TCP_NODELAY two segments, so every client wakes up twice for one answer (and the gateway
makes two system calls). The gateway's answers are small and sent whole, so the head is held
and written together with the first body part. uvicorn is pinned (requirements.lock); a test
(tests/gateway/test_onewrite.py) checks the patched class still serves answers whole."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http import httptools_impl


class _Held:
    """Stands in for the transport while uvicorn writes a response's head."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Prefixed:
    """Stands in for the transport for the first body write: the held head goes first."""

    def __init__(self, transport: Any, head: bytes) -> None:
        self._transport = transport
        self._head: bytes | None = head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, None
        self._transport.write(data if head is None else head + data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteCycle(httptools_impl.RequestResponseCycle):
    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        transport = self.transport
        if message["type"] == "http.response.start" and not self.response_started:
            held = _Held(transport)
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
                self._head = b"".join(held.data) or None
            return
        if self._head is None:
            await super().send(message)
            return
        prefixed = _Prefixed(transport, self._head)
        self._head = None
        self.transport = prefixed  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
            prefixed.flush()  # the head is never dropped, whatever the body send did


def install() -> None:
    httptools_impl.RequestResponseCycle = OneWriteCycle  # type: ignore[misc]
