"""The HTTP server adapter: uvicorn configured for hostile networks (header and body read timeouts, small
WebSocket frames, no per-message compression) — one place for `monitor serve`, the demo, the tests and the
benchmarks. Upload forms are parsed in memory by the routes (`ingest.adapters.multipart`)."""

from __future__ import annotations

import asyncio
import json

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_TIMEOUT = json.dumps({"code": "BODY_TIMEOUT", "message": "请求内容长时间未传完，连接已断开，请在网络稳定时重试"},
                          ensure_ascii=False).encode()
HEADERS_TOO_LARGE = json.dumps({"code": "HEADERS_TOO_LARGE", "message": "请求行和请求头过大，已拒绝（上限 64 KB）"},
                               ensure_ascii=False).encode()
BODY_TOO_SLOW = json.dumps({"code": "BODY_TOO_SLOW", "message": "请求内容传输过慢，未在规定时间内传完，连接已断开，"
                                                            "请在网络稳定时重试"}, ensure_ascii=False).encode()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with read timeouts: a request whose headers do not arrive whole within
    `header_timeout_s` of its first byte (or of the connection opening) is closed; one whose body sends nothing
    for `body_timeout_s`, or has not arrived whole `body_deadline_s` after its headers (a byte now and then keeps
    no body open for good), is answered 408 and closed. Slow clients hold no slot for long. A request line and headers
    of more than `max_head_bytes` are answered 431 and closed: the parser gathers a header's value by concatenation,
    so twelve clients sending 40 MB headers each once stalled every other request for 11 s, without a token.

    The body clock is one timer per request that re-arms itself lazily: a 3 MB body arrives in ~50 chunks,
    and each chunk only notes the time."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0
    body_deadline_s = 300.0
    max_head_bytes = 64 * 1024
    head_slice_bytes = 8 * 1024  # the head is fed to the parser this much at a time, so it stops near the cap
    _in_head = True
    _head_bytes = 0
    _body_started = 0.0
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_seen = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Bytes as they arrive: while a request's head is being read, fed in slices and counted against
        `max_head_bytes`; a body as it comes."""
        pos = 0
        while self._in_head and pos < len(data):
            piece = data[pos:pos + self.head_slice_bytes]
            pos += len(piece)
            self._head_bytes += len(piece)
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
            super().data_received(piece)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:  # refused, or upgraded
                return
        if pos < len(data):
            super().data_received(data[pos:] if pos else data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True  # counted since the last request ended (or the connection opened)
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_timers()
        super().on_headers_complete()
        self._body_seen = self._body_started = self.loop.time()
        self._body_timer = self.loop.call_later(min(self.body_timeout_s, self.body_deadline_s), self._check_body)

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_timers()
        self._in_head, self._head_bytes = True, 0  # the next request on this connection is counted from its start
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took more than %.0f s",
                             self.header_timeout_s)
            self.transport.close()

    def _refuse_head(self) -> None:
        self._cancel_timers()
        self.logger.info("refusing a request whose line and headers exceed %d bytes", self.max_head_bytes)
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(HEADERS_TOO_LARGE)).encode()
                                 + b"\r\n\r\n" + HEADERS_TOO_LARGE)
            self.transport.close()

    def _check_body(self) -> None:
        self._body_timer = None
        now = self.loop.time()
        idle, elapsed = now - self._body_seen, now - self._body_started
        if idle < self.body_timeout_s and elapsed < self.body_deadline_s:
            wait = min(self.body_timeout_s - idle, self.body_deadline_s - elapsed)
            self._body_timer = self.loop.call_later(wait, self._check_body)
            return
        if self.transport.is_closing():
            return
        slow = idle < self.body_timeout_s
        if slow:
            self.logger.info("closing a request whose body took more than %.0f s", self.body_deadline_s)
        else:
            self.logger.info("closing a request whose body stalled for %.0f s", idle)
        answer = BODY_TOO_SLOW if slow else BODY_TIMEOUT
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(answer)).encode()
                                 + b"\r\n\r\n" + answer)
            self.cycle.response_started = self.cycle.response_complete = True
        if self.cycle is not None:  # the app's own answer to the cut-off body goes nowhere (it was logged as an
            self.cycle.disconnected = True  # ASGI error: "response already completed", ~100 lines per request)
            self.cycle.message_event.set()
        self.transport.close()


def server_config(app: FastAPI, host: str, port: int, log_level: str = "info",
                  header_timeout_s: float = 10.0, body_timeout_s: float | None = None,
                  body_deadline_s: float | None = None) -> uvicorn.Config:
    """uvicorn settings for the dispatch center (body timeout and deadline: the app's settings unless given)."""
    settings = getattr(app.state, "settings", None)
    if body_timeout_s is None:
        body_timeout_s = settings.body_timeout_seconds if settings is not None else 30.0
    if body_deadline_s is None:
        body_deadline_s = settings.body_deadline_seconds if settings is not None else 300.0
    protocol = type("GuardedHttpProtocol", (GuardedHttpProtocol,),
                    {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s,
                     "body_deadline_s": body_deadline_s})
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=protocol,
        ws="websockets-sansio",  # flow control: a stalled client's sends wait, memory stays bounded
        ws_per_message_deflate=False,  # events are small JSON: compression cost more CPU than it saved
        ws_max_size=64 * 1024,  # clients send only their auth message
        timeout_keep_alive=5, limit_concurrency=4000, backlog=2048,
        access_log=False,  # the app writes its own access line, with the request id and duration (RequestIds)
    )
