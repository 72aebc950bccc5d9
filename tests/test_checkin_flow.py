"""End to end on embedded defaults: upload → durable acceptance → real face matching and fence → verdict."""

import io
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import JSON, func, select, update

from models.tables import Anomaly, CheckIn, OutboxMessage, Verification
from monitor.decisions.geodesy import distance_m
from tests.helpers import VENUE, VENUE_RADIUS_M, World, auth, face, far_fix, jpeg


def test_same_person_is_verified(world: World) -> None:
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "passed"
    assert body["message"] == "签到成功"
    assert body["reasons"] == []
    assert 0 < body["face_distance"] < 0.6
    assert body["fence_result"] == "inside"
    with world.client.app.state.db.session() as s:
        v = s.scalar(select(Verification).where(Verification.subject_id == body["id"]))
        assert v.thresholds["face_match"] == 0.60 and v.thresholds["face_mismatch"] == 0.80
        assert v.thresholds["face_engine"] == "faceplugin-arcface" and v.thresholds["metric"] == "cosine"
        assert v.measured["phash"] and v.face_encoding and len(v.face_encoding) == 512
        assert v.model_version == "faceplugin-arcface@87aacdfe57510db2"
        assert s.scalar(select(OutboxMessage.processed_at).where(OutboxMessage.subject_id == body["id"])) is not None


def test_other_person_is_face_mismatch(world: World) -> None:
    r = world.checkin(face("people/kit_harington/john2.jpeg"))  # not on the class's roster
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "failed"
    assert [x["code"] for x in body["reasons"]] == ["FACE_MISMATCH"]
    assert body["message"].startswith("签到未通过：人脸与登记照片不符")
    assert body["face_distance"] > 0.80 and body["face_threshold"] == 0.60
    assert body["face_mismatch_threshold"] == 0.80  # the threshold the message names
    with world.client.app.state.db.session() as s:
        anomaly = s.scalar(select(Anomaly).where(Anomaly.subject_id == body["id"]))
        assert anomaly.rule == "FACE_MISMATCH" and anomaly.severity == "high"
        assert anomaly.evidence["face_distance"] > 0.80
        assert anomaly.thresholds == {"face_match_threshold": 0.60, "face_mismatch_threshold": 0.80,
                                      "proxy_face_max_distance": 0.56, "proxy_face_margin": 0.10,
                                      "cohort_margin": 0.03, "face_engine": "faceplugin-arcface",
                                      "face_metric": "cosine", "face_model_sha256": body["face_model_sha256"]}
        assert anomaly.region_code == "530100"


def test_classmates_face_is_face_mismatch_and_proxy_signin(world: World) -> None:
    r = world.checkin(face("people/biden/biden2.jpg"))  # biden is on the roster: his face, obama's name
    assert r.json()["status"] == "failed"
    assert [x["code"] for x in r.json()["reasons"]] == ["FACE_MISMATCH", "PROXY_SIGNIN"]
    with world.client.app.state.db.session() as s:
        proxy = s.scalar(select(Anomaly).where(Anomaly.rule == "PROXY_SIGNIN"))
        assert proxy.evidence["other_trainee_id"] == world.biden_id
        assert proxy.evidence["nearest_other_distance"] + 0.10 <= proxy.evidence["face_distance"]


def test_fix_five_km_away_is_out_of_fence(world: World) -> None:
    r = world.checkin(face("people/obama/obama1.jpg"), **far_fix(5000))
    body = r.json()
    assert body["status"] == "failed"
    assert [x["code"] for x in body["reasons"]] == ["OUT_OF_FENCE"]
    fix = far_fix(5000)
    expected = distance_m((fix["latitude"], fix["longitude"]), VENUE) - VENUE_RADIUS_M
    assert f"{expected:,.0f} 米" in body["message"]
    with world.client.app.state.db.session() as s:
        anomaly = s.scalar(select(Anomaly).where(Anomaly.subject_id == body["id"]))
        assert abs(anomaly.evidence["outside_by_m"] - expected) < 0.5


def test_fix_straddling_the_fence_is_uncertain_not_alarmed(world: World) -> None:
    r = world.checkin(face("people/obama/obama-720p.jpg"), accuracy_m=100, **far_fix(180))
    body = r.json()
    assert body["status"] == "passed"
    assert body["fence_result"] == "uncertain"


def test_group_photo_is_face_multiple_and_blank_is_face_missing(world: World) -> None:
    from PIL import Image

    body = world.checkin(face("groups/two_people.jpg")).json()
    assert [x["code"] for x in body["reasons"]] == ["FACE_MULTIPLE"]
    body = world.checkin(jpeg(Image.new("RGB", (640, 480), (120, 110, 90)))).json()
    assert [x["code"] for x in body["reasons"]] == ["FACE_MISSING"]


def test_a_classmate_check_in_without_a_face_vector_counted_valid_breaks_no_verification(world: World) -> None:
    """A group photo (FACE_MULTIPLE: no face vector) whose alert an inspector closed as a false alarm counts as a
    passed check-in; it was then read as a classmate's evidence, its missing vector (stored as JSON null) reached the
    distance arithmetic, and every genuine check-in of its classmates failed verification (seen in the demo)."""
    group = world.checkin(face("groups/two_people.jpg"))
    assert [x["code"] for x in group.json()["reasons"]] == ["FACE_MULTIPLE"], group.text
    with world.client.app.state.db.session() as s:  # as counts_after_false_alarm leaves it (tested in test_dispatch)
        checkin = s.get(CheckIn, group.json()["id"])
        assert checkin is not None
        checkin.status = "passed"
        stored = s.scalar(select(Verification.face_encoding).where(Verification.subject_id == checkin.id))
        assert stored is None
        # as every row written before the column stored SQL NULL holds it: JSON null
        s.execute(update(Verification).where(Verification.subject_id == checkin.id).values(face_encoding=JSON.NULL))
        assert s.scalar(select(func.count()).select_from(Verification).where(
            Verification.subject_id == checkin.id, Verification.face_encoding.is_not(None))) == 1
    r = world.checkin(face("people/biden/biden2.jpg"), trainee_id=world.biden_id, device_id="phone-b")
    assert r.status_code == 201 and r.json()["status"] == "passed", r.text  # a verdict, and his own face
    with world.client.app.state.db.session() as s:
        assert not s.scalars(select(Anomaly.rule).where(Anomaly.rule == "VERIFICATION_FAILED")).all()


def test_sign_out_message(world: World) -> None:
    body = world.checkin(face("people/obama/obama-1080p.jpg"), kind="sign_out").json()
    assert body["message"] == "签退成功"


def test_idempotent_retry_returns_first_result_and_creates_nothing(world: World) -> None:
    photo = face("people/obama/obama2.jpg")
    first = world.checkin(photo, key="retry-1")
    before = world.stored()
    again = world.checkin(photo, key="retry-1")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == first.json()["status"] == "passed"
    assert again.json()["duplicate"] is True
    assert world.stored() == before
    other = world.checkin(face("people/obama/obama3.jpg"), key="retry-1")
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert world.stored() == before
    # Outside tester: the same key and photo for another trainee or kind was answered as a duplicate of this
    # record (200), so that trainee's phone showed a sign-in stored that never was. A retry repeats the request.
    for overrides, named in (({"trainee_id": world.biden_id}, "trainee_id"), ({"kind": "sign_out"}, "kind")):
        other = world.checkin(photo, key="retry-1", **overrides)
        assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED", other.text
        assert other.json()["detail"]["fields"] == [named] and named in other.json()["message"]
    assert world.stored() == before
    from datetime import UTC, datetime

    shot = face("groups/two_people.jpg")

    def snapshot(camera: str) -> Any:
        return world.client.post("/api/v1/snapshots", files={"photo": ("s.jpg", shot, "image/jpeg")},
                                 headers={**auth(world.site), "Idempotency-Key": "shot-1"},
                                 data={"class_id": str(world.class_id), "camera_id": camera,
                                       "captured_at": datetime.now(UTC).isoformat()})

    first_shot = snapshot("cam-1")
    assert first_shot.status_code == 201, first_shot.text
    assert snapshot("cam-1").json()["id"] == first_shot.json()["id"]
    other = snapshot("cam-2")
    assert other.status_code == 409 and other.json()["detail"]["fields"] == ["camera_id"], other.text


def test_status_url_reports_the_verdict_to_the_site_only(world: World) -> None:
    body = world.checkin(face("people/obama/obama2.jpg")).json()
    r = world.client.get(body["status_url"], headers=auth(world.site))
    assert r.status_code == 200 and r.json()["status"] == "passed"
    assert world.client.get(body["status_url"], headers=auth(world.other_site)).status_code == 404
    assert world.client.get(body["status_url"], headers=auth(world.operator)).status_code == 200


def test_snapshot_counts_faces(world: World) -> None:
    r = world.snapshot(face("groups/obama_and_biden.jpg"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "passed"
    assert "3 张人脸" in r.json()["message"]
    with world.client.app.state.db.session() as s:
        assert s.scalar(select(CheckIn).limit(1)) is None


def test_evidence_photo_needs_authorisation(world: World) -> None:
    body = world.checkin(face("people/biden/biden2.jpg")).json()
    url = f"/api/v1/evidence/{body['photo_sha256']}"
    assert world.client.get(url).status_code == 401
    other = world.client.get(url, headers=auth(world.other_site))  # outside its scope: as if it did not exist
    assert other.status_code == 404 and other.json()["code"] == "UNKNOWN_EVIDENCE"
    r = world.client.get(url, headers=auth(world.operator))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == face("people/biden/biden2.jpg")
    # Someone at the database sets the row's media type to a page: the bytes still say what they are.
    from sqlalchemy import update

    from models.tables import Evidence
    with world.client.app.state.db.engine.begin() as conn:
        conn.execute(update(Evidence).where(Evidence.sha256 == body["photo_sha256"]).values(media_type="text/html"))
    r = world.client.get(url, headers=auth(world.operator))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


def test_a_classmates_evidence_is_their_templates_and_latest_three_passed_checkins(world: World) -> None:
    """A check-in late in the day costs what an early one does: per classmate, the enrolled templates and only the
    latest CLASSMATE_RECENT_CHECKINS passed check-ins of the day are compared."""
    from models.clock import local_day_start
    from monitor.services.checkins import CLASSMATE_RECENT_CHECKINS, classmates_evidence

    passed = []
    for photo in ("obama1.jpg", "obama2.jpg", "obama-480p.jpg", "obama-1080p.jpg", "obama_small.jpg"):
        r = world.checkin(face(f"people/obama/{photo}"))
        if r.json()["status"] == "passed":
            passed.append(r.json()["id"])
    assert len(passed) >= 4 > CLASSMATE_RECENT_CHECKINS == 3, passed
    r = world.checkin(face("people/biden/biden2.jpg"), trainee_id=world.biden_id)
    assert r.json()["status"] == "passed", r.text
    with world.client.app.state.db.session() as s:
        biden_checkin = s.get(CheckIn, r.json()["id"])
        assert biden_checkin is not None
        evidence = classmates_evidence(s, biden_checkin, local_day_start(biden_checkin.received_at),
                                       "faceplugin-arcface@87aacdfe57510db2")
    obama = evidence[world.obama_id]
    assert sorted(c for _, c in obama if c is not None) == sorted(passed)[-3:]  # the latest three, not the first
    assert sum(1 for _, c in obama if c is None) == 1  # the enrolled template
    assert all(len(encoding) == 512 for encoding, _ in obama)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_one_photo_sent_as_a_check_in_and_a_snapshot_at_once_is_stored_once(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """The two tables have no unique key in common: an outside tester had both stored (201/201) by racing them.
    The write takes a lock on the photo's digest (PostgreSQL; SQLite's writers are one at a time) and looks again:
    one is stored, the other refused as a replay, on both databases."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    client = client_factory(database_url=url, verdict_wait_seconds=0) if url else client_factory(verdict_wait_seconds=0)
    world = World.build(client)
    for n in range(3):
        photo = jpeg(Image.open(io.BytesIO(face("people/obama/obama2.jpg"))).rotate(n + 1))  # new bytes each
        barrier, answers = threading.Barrier(2), {}

        def send(kind: str, photo: bytes = photo, barrier: threading.Barrier = barrier,
                 answers: dict[str, Any] = answers) -> None:
            barrier.wait()
            answers[kind] = world.checkin(photo) if kind == "checkin" else world.snapshot(photo)

        threads = [threading.Thread(target=send, args=(kind,)) for kind in ("checkin", "snapshot")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in answers.values())
        assert codes[0] in (201, 202) and codes[1] == 409, {k: r.text for k, r in answers.items()}
        refused = [r for r in answers.values() if r.status_code == 409]
        assert refused[0].json()["code"] == "PHOTO_REPLAYED"
