"""No bearer token and no whole ID number reaches any log line of the whole suite (this file runs last and
scans what every test before it logged), including the paths that used to leak."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
from websockets.sync.client import connect

from monitor.adapters.logsafe import install_redaction
from monitor.app import create_app
from monitor.demo.world import make_id_number
from tests.conftest import LOG_LINES
from tests.helpers import auth, live_world

TOKEN = re.compile(r"mon_[A-Za-z0-9_\-]{6,}")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")


def test_known_leaks_are_redacted(settings_factory: Callable[..., Any]) -> None:
    """A token in a WebSocket URL (uvicorn's access log) and an ID number in a failing statement."""
    app = create_app(settings_factory())
    with live_world(app, log_level="info") as world:  # uvicorn logs every WebSocket URL at INFO
        url = str(world.client.base_url).rstrip("/").replace("http", "ws")
        with connect(f"{url}/api/v1/live?token={world.operator}", open_timeout=10) as ws:
            assert "TOKEN_IN_URL" in str(ws.recv(timeout=10))
        id_number = make_id_number("530102", date(1990, 1, 2), 77)
        body = {"id_number": id_number, "name": "重复的人"}
        assert world.client.post("/api/v1/trainees", json=body, headers=auth(world.admin)).status_code == 201
        assert world.client.post("/api/v1/trainees", json=body, headers=auth(world.admin)).status_code == 409
        logging.getLogger("monitor.test").error("registration of %s with token %s failed", id_number, world.admin)
    assert any("/api/v1/live?token=***" in line for line in LOG_LINES)  # logged, with the token redacted
    assert any("monitor.test" in line and "530102" in line for line in LOG_LINES)


def test_an_object_argument_is_redacted_as_it_would_print() -> None:
    """A client library logs the request's URL object, not a string: a token or ID number in its query is redacted
    too (the fuzzer's query strings once reached the log through httpx.URL)."""
    install_redaction()
    id_number = make_id_number("530102", date(1990, 1, 3), 78)
    url = httpx.URL(f"http://testserver/api/v1/audit?subject_id={id_number}&t=mon_abcdefghijkl")
    record = logging.getLogger("httpx").makeRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s",
                                                   ("GET", url), None)
    message = record.getMessage()
    assert id_number not in message and "mon_abcdefghijkl" not in message and "/api/v1/audit" in message


def test_no_log_line_of_the_suite_holds_a_token_or_an_id_number() -> None:
    assert len(LOG_LINES) > 50, "the log capture saw almost nothing: it is not wired"
    tokens = [line for line in LOG_LINES if TOKEN.search(line)]
    ids = [line for line in LOG_LINES if ID_NUMBER.search(line)]
    assert not tokens, tokens[:5]
    assert not ids, ids[:5]
