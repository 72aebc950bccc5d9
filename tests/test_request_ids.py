"""Structured logs with request ids (issue 21 item 7): every answer carries X-Request-ID (the client's when sane, else
a new one), every log line written for the request names it, and MONITOR_LOG_FORMAT=json writes one redacted JSON
object per line."""

from __future__ import annotations

import json
import logging

import pytest

from monitor.adapters.logsafe import REQUEST_ID, JsonLines
from monitor.demo.world import make_id_number
from tests.helpers import World, auth


def test_answers_carry_the_request_id_and_the_logs_name_it(world: World, caplog: pytest.LogCaptureFixture) -> None:
    r = world.client.get("/api/v1/institutions", headers={**auth(world.admin), "X-Request-ID": "phone-42-abc"})
    assert r.headers["x-request-id"] == "phone-42-abc"
    fresh = world.client.get("/api/v1/institutions", headers=auth(world.admin)).headers["x-request-id"]
    assert len(fresh) == 16 and fresh != "phone-42-abc"
    junk = world.client.get("/api/v1/institutions", headers={**auth(world.admin), "X-Request-ID": "a b" * 40})
    assert junk.headers["x-request-id"] != "a b" * 40  # not echoed: a new one
    assert world.client.get("/api/v1/nowhere").headers["x-request-id"]  # refusals too
    caplog.set_level(logging.INFO)
    with caplog.at_level(logging.INFO):
        world.client.post("/api/v1/occupations", json={"code": "9-99-99-99", "name": "测试工种"},
                          headers={**auth(world.admin), "X-Request-ID": "req-occupation-1"})
    tagged = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "req-occupation-1"]
    assert tagged, [(rec.name, getattr(rec, "request_id", None)) for rec in caplog.records]


def test_json_lines_are_one_redacted_object_per_record() -> None:
    number = make_id_number("530102", __import__("datetime").date(1990, 1, 2), 7)
    token = REQUEST_ID.set("req-9")
    try:
        record = logging.getLogger("monitor.test").makeRecord("monitor.test", logging.WARNING, __file__, 1,
                                                              "trainee %s refused", (number,), None)
    finally:
        REQUEST_ID.reset(token)
    line = json.loads(JsonLines().format(record))
    assert line["request_id"] == "req-9" and line["level"] == "WARNING" and line["logger"] == "monitor.test"
    assert number not in line["message"] and number[:6] in line["message"] and line["at"].endswith("+00:00")
