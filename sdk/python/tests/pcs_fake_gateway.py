"""A scriptable stand-in for the gateway on 127.0.0.1 (real sockets), for the SDK tests."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeGateway:
    """Answers from per-route queues of Replies; the last reply of a queue repeats.

    Routes are "METHOD /path". Unscripted routes answer 404; /readyz answers `ready`.
    """

    def __init__(self) -> None:
        self.routes: dict[str, deque[Reply]] = {}
        self.seen: list[Seen] = []
        self.ready = True
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with gateway._lock:
                    gateway.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    reply = gateway._next(f"{self.command} {self.path}")
                data = b"" if reply.body is None else (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # keep-alive handler threads must not block close
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def _next(self, route: str) -> Reply:
        if route in ("GET /readyz", "GET /healthz") and route not in self.routes:
            return Reply(200 if self.ready else 503, {"ready": self.ready})
        queue = self.routes.get(route)
        if not queue:
            return Reply(404, {"error": "not_found", "detail": route})
        return queue.popleft() if len(queue) > 1 else queue[0]

    def script(self, route: str, *replies: Reply) -> None:
        self.routes[route] = deque(replies)

    def requests(self, route: str) -> list[Seen]:
        method, path = route.split(" ", 1)
        return [s for s in self.seen if s.method == method and s.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def outcome_body(request_id: str, status: str = "accepted", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": request_id, "status": status, "pcs_id": "ab" * 32, "tenant": "acme",
        "accepted": status == "accepted" or extra.pop("still_accepted", False),
        "escalated": status == "escalated", "dedup_hit": False, "policy_version": "p1",
        "region": "eu-west", "recomputed_D_hat": 2.0, "recomputed_budget": 0.35,
        "regime": "mixed",
    }
    body.update(extra)
    return body
