"""Every upload ends in a final status: unreadable photo parts are noted, a photo that cannot be decoded or a
verification that keeps failing ends as VERIFICATION_FAILED for operators, never a silent retry loop."""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import select

from models.tables import Anomaly, CheckIn, OnlineHeartbeat, OutboxMessage, Verification
from monitor.decisions.exif import read_exif_gps, read_exif_time
from monitor.services.worker import Worker
from tests.helpers import World, auth, face

FAST_RETRIES = {"redeliver_after_seconds": 0.3, "relay_interval_seconds": 0.2, "verdict_wait_seconds": 1.0,
                "max_verification_attempts": 3}


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def poisoned_exif_selfie() -> bytes:
    """A genuine selfie whose EXIF says it was taken in year 1, at a GPS position of 0/0 rationals."""
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "0001:01:01 00:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    zero = (IFDRational(0, 0), IFDRational(0, 0), IFDRational(0, 0))
    gps[1], gps[2], gps[3], gps[4] = "N", zero, "E", zero
    out = io.BytesIO()
    Image.open(io.BytesIO(face("people/obama/obama2.jpg"))).save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def wait_final(world: World, checkin_id: int, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = world.client.get(f"/api/v1/check-ins/{checkin_id}", headers=auth(world.operator)).json()
        if body["status"] != "pending":
            return body
        time.sleep(0.2)
    raise AssertionError(f"check-in {checkin_id} still pending after {timeout_s} s")


def test_exif_readers_ignore_impossible_values() -> None:
    assert read_exif_time("2024:05:01 08:30:00") == ("2024-05-01T08:30:00", None)
    for raw in ("0001:01:01 00:00:00", "9999:12:31 23:59:59", "not a time"):
        when, note = read_exif_time(raw)
        assert when is None and note and "已忽略" in note
    zero = (IFDRational(0, 0),) * 3
    assert read_exif_gps(zero, "N", zero, "E")[0] is None
    assert read_exif_gps((91, 0, 0), "N", (100, 0, 0), "E")[0] is None
    assert read_exif_gps((25, 2, 36), "N", (102, 42, 21), "E")[0] == pytest.approx((25.0433, 102.7058), abs=1e-3)


@pytest.mark.parametrize("size", [(1600, 1), (1, 1600)])
def test_a_one_pixel_high_strip_is_judged_not_crashed(world: World, size: tuple[int, int]) -> None:
    """No face upright, so the strip is looked at turned too: numpy's turned view must not reach dlib.

    A one-pixel side cannot hold a face, so the answer is a photo too small to judge (retake it), not 'no face'."""
    r = world.checkin(png(Image.new("RGB", size, (90, 90, 90))), filename="strip.png")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "failed" and [x["code"] for x in body["reasons"]] == ["FACE_POOR"]
    assert "分辨率过低" in body["reasons"][0]["message"]


def test_poisoned_exif_is_noted_and_ignored(world: World) -> None:
    r = world.checkin(poisoned_exif_selfie())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] in ("passed", "review")  # judged on the face and the fix, not on the broken EXIF
    assert "PHOTO_REPLAY" not in {x["code"] for x in body["reasons"]}
    assert any("拍摄时间" in n for n in body["notes"]) and any("定位" in n for n in body["notes"])


def test_a_sixteen_bit_greyscale_selfie_is_seen(world: World) -> None:
    grey = Image.open(io.BytesIO(face("people/obama/obama2.jpg"))).convert("L")
    sixteen = Image.new("I;16", grey.size)
    sixteen.frombytes(bytes(b for v in grey.tobytes() for b in (v * 257).to_bytes(2, "little")))
    r = world.checkin(png(sixteen), filename="grey16.png")
    assert r.status_code == 201, r.text
    assert r.json()["face_distance"] is not None and r.json()["status"] != "failed", r.text


@pytest.fixture
def flaky_world(client_factory: Callable[..., TestClient]) -> World:
    return World.build(client_factory(**FAST_RETRIES))


def test_a_verification_that_keeps_failing_ends_as_verification_failed(flaky_world: World) -> None:
    world = flaky_world
    engine = world.client.app.state.engine
    calls = []

    def broken_scan(data: bytes, purpose: str = "selfie") -> Any:
        calls.append(purpose)
        raise RuntimeError("dlib exploded")

    engine.scan = broken_scan
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code in (201, 202), r.text
    body = wait_final(world, r.json()["id"])
    assert body["status"] == "failed" and [x["code"] for x in body["reasons"]] == ["VERIFICATION_FAILED"]
    assert len(calls) == 3
    time.sleep(1.5)  # the relay must not send it again
    assert len(calls) == 3
    with world.client.app.state.db.session() as s:
        outbox = s.scalar(select(OutboxMessage).where(OutboxMessage.subject_id == body["id"],
                                                      OutboxMessage.topic == "checkin"))
        assert outbox is not None and outbox.processed_at is not None and outbox.failures == 3
        assert "dlib exploded" in (outbox.last_error or "")
        anomaly = s.scalar(select(Anomaly).where(Anomaly.subject_id == body["id"], Anomaly.subject_kind == "checkin"))
        assert anomaly is not None and anomaly.rule == "VERIFICATION_FAILED" and anomaly.state == "open"
    alerts = world.client.get("/api/v1/alerts", headers=auth(world.operator)).json()
    assert any(a["rule"] == "VERIFICATION_FAILED" for a in alerts)


def test_a_heartbeat_that_keeps_failing_ends_failed(flaky_world: World) -> None:
    world = flaky_world
    session = world.client.post("/api/v1/online/sessions", headers=auth(world.site),
                                json={"class_id": world.class_id, "trainee_id": world.obama_id}).json()

    def broken_scan(data: bytes, purpose: str = "selfie") -> Any:
        raise RuntimeError("dlib exploded")

    world.client.app.state.engine.scan = broken_scan
    r = world.client.post(f"/api/v1/online/sessions/{session['id']}/heartbeats", headers=auth(world.site),
                          data={"captured_at": datetime.now(UTC).isoformat()},
                          files={"photo": ("p.jpg", face("people/obama/obama2.jpg"), "image/jpeg")})
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with world.client.app.state.db.session() as s:
            beat = s.get(OnlineHeartbeat, r.json()["id"])
            assert beat is not None
            if beat.status != "pending":
                break
        time.sleep(0.2)
    assert beat.status == "failed"
    with world.client.app.state.db.session() as s:
        rules = s.scalars(select(Anomaly.rule).where(Anomaly.subject_kind == "heartbeat")).all()
    assert rules == ["VERIFICATION_FAILED"]


def test_a_message_delivered_again_and_again_is_given_up(client_factory: Callable[..., TestClient]) -> None:
    """An upload that kills its worker every time is never processed: after max_publish_attempts the relay stops
    and records it as VERIFICATION_FAILED."""
    client = client_factory(run_worker=False, verdict_wait_seconds=0)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 202
    app = client.app
    with app.state.db.session() as s:
        outbox = s.scalar(select(OutboxMessage).where(OutboxMessage.subject_id == r.json()["id"]))
        assert outbox is not None
        outbox.attempts = app.state.settings.max_publish_attempts
        outbox.created_at = outbox.published_at = datetime(2020, 1, 1, tzinfo=UTC)
    worker = Worker(app.state.settings, app.state.db, app.state.bus, app.state.evidence, app.state.engine)
    assert worker.relay_outbox() == 0
    with app.state.db.session() as s:
        checkin = s.get(CheckIn, r.json()["id"])
        assert checkin is not None and checkin.status == "failed"
        verification = s.scalar(select(Verification).where(Verification.subject_id == checkin.id))
        assert verification is not None and verification.reasons[0]["code"] == "VERIFICATION_FAILED"
        assert s.scalar(select(OutboxMessage.processed_at).where(OutboxMessage.subject_id == checkin.id))


def png_with_broken_pixels() -> bytes:
    """A PNG whose header and chunk structure are sound but whose pixel data is not zlib: it passes the API's
    structural check (no decoding there) and fails when the worker decodes it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"not zlib at all" * 40) + chunk(b"IEND", b"")


def test_a_photo_that_cannot_be_decoded_ends_at_once_as_verification_failed(world: World) -> None:
    r = world.checkin(png_with_broken_pixels(), filename="broken.png")
    assert r.status_code == 201, r.text  # accepted (the API does not decode), then judged by the worker at once
    body = r.json()
    assert body["status"] == "failed" and [x["code"] for x in body["reasons"]] == ["VERIFICATION_FAILED"]
    assert "无法解码（文件数据已损坏或不完整）" in body["message"], body  # the decoder's English stays in the log
    assert not re.search(r"[A-Za-z]{4,}", body["message"]), body
    with world.client.app.state.db.session() as s:
        outbox = s.scalar(select(OutboxMessage).where(OutboxMessage.subject_id == body["id"]))
        assert outbox is not None and outbox.failures == 0 and outbox.processed_at is not None  # no retries


def test_a_png_changed_in_transit_is_refused_at_upload(world: World) -> None:
    """A PNG with one byte of its pixel data changed (a flaky link, a failing card) passed the upload's structural
    check and was judged by the worker, raising an alert on the trainee. Each chunk's CRC-32 now shows it at upload:
    a 422 the phone can retake, and nothing stored."""
    whole = png(Image.open(io.BytesIO(face("people/obama/obama2.jpg"))).convert("RGB"))
    idat = whole.index(b"IDAT")
    changed = bytearray(whole)
    changed[idat + 200] ^= 0x10
    r = world.checkin(bytes(changed), filename="flaky.png")
    assert r.status_code == 422 and r.json()["code"] == "CORRUPT_IMAGE", r.text
    assert "校验码不符" in r.json()["message"] and "截断" not in r.json()["message"]  # changed, not cut short
    r = world.checkin(whole, filename="whole.png")
    assert r.status_code == 201 and r.json()["status"] == "passed", r.text
