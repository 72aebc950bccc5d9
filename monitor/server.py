"""The HTTP server adapter: uvicorn configured for hostile networks (header timeout, small WebSocket frames,
no per-message compression) — one place for `monitor serve`, the demo and the benchmarks."""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request headers do not arrive whole within
    `header_timeout_s` of its first byte (or of the connection opening): slow-header clients hold no slot."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took more than %.0f s",
                             self.header_timeout_s)
            self.transport.close()


def server_config(app: FastAPI, host: str, port: int, log_level: str = "info",
                  header_timeout_s: float = 10.0) -> uvicorn.Config:
    """uvicorn settings for the dispatch center."""
    protocol = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s})
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=protocol,
        ws="websockets-sansio",  # flow control: a stalled client's sends wait, memory stays bounded
        ws_per_message_deflate=False,  # events are small JSON: compression cost more CPU than it saved
        ws_max_size=64 * 1024,  # clients send only their auth message
        timeout_keep_alive=5, limit_concurrency=4000, backlog=2048,
    )
