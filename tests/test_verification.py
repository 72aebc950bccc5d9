"""Verification rules on real photos: orientation and formats, quality, grey zone, replay, proxy, GPS."""

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance, ImageFilter
from sqlalchemy import select

from models.tables import Anomaly, PhotoHash, ReviewItem
from monitor.demo.world import offset_point
from tests.helpers import VENUE, World, auth, face, far_fix, jpeg

# What exif_transpose applies for each orientation; the stored pixels get the inverse.
_INVERSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def photo(rel: str) -> Image.Image:
    return Image.open(io.BytesIO(face(rel))).convert("RGB")


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored turned so that its EXIF orientation tag shows it upright."""
    stored = image.transpose(_INVERSE[orientation]) if _INVERSE[orientation] else image
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def codes(response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_honoured(world: World, orientation: int) -> None:
    r = world.checkin(with_orientation(photo("people/obama/obama2.jpg"), orientation))
    assert r.json()["status"] == "passed", r.json()
    assert r.json()["face_distance"] < 0.5


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("L", "PNG"), ("RGB", "WEBP"), ("LA", "PNG")])
def test_png_webp_alpha_and_greyscale_are_read_correctly(world: World, mode: str, fmt: str) -> None:
    image = photo("people/obama/obama2.jpg").convert(mode)
    r = world.checkin(encoded(image, fmt), filename=f"selfie.{fmt.lower()}")
    # Read right: the face is found and lies as near the enrolled face as the colour JPEG does (0.24, cosine).
    assert r.status_code == 201 and r.json()["reasons"] == [], r.json()
    assert r.json()["status"] == "passed" and abs(r.json()["face_distance"] - 0.24) < 0.05, r.json()


def test_twelve_megapixel_photo_is_verified(world: World) -> None:
    big = photo("people/obama/obama1.jpg").resize((4000, 3000))
    r = world.checkin(with_orientation(big, 6))
    small = world.checkin(face("people/obama/obama1.jpg"), device_id="phone-2")
    assert r.json()["reasons"] == [] and r.json()["status"] in ("passed", "review"), r.json()
    assert abs(r.json()["face_distance"] - small.json()["face_distance"]) < 0.08  # the same face as at 0.3 MP


@pytest.mark.parametrize(("make", "word", "measure"), [
    (lambda im: im.filter(ImageFilter.GaussianBlur(6)), "模糊", "sharpness"),
    (lambda im: ImageEnhance.Brightness(im).enhance(0.15), "过暗", "brightness"),
    (lambda im: im.resize((100, round(im.height * 100 / im.width))), "过小", "face_side_px"),
])
def test_poor_faces_are_face_poor_with_measured_value(world: World, make, word: str, measure: str) -> None:
    r = world.checkin(jpeg(make(photo("people/obama/obama2.jpg")), quality=95))
    assert codes(r) == ["FACE_POOR"], r.json()
    assert word in r.json()["message"]
    with world.client.app.state.db.session() as s:
        anomaly = s.scalar(select(Anomaly).where(Anomaly.rule == "FACE_POOR"))
        assert measure in anomaly.evidence and anomaly.thresholds


def test_cut_off_face_is_face_poor(world: World) -> None:
    r = world.checkin(face("partial/obama_partial_face.jpg"))
    assert codes(r) == ["FACE_POOR"] and "截断" in r.json()["message"]


def test_grey_zone_distance_goes_to_review_not_anomaly(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(face_match_threshold=0.15, face_mismatch_threshold=0.55)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))  # cosine distance about 0.24
    assert r.json()["status"] == "review", r.json()
    assert "复核" in r.json()["message"]
    with client.app.state.db.session() as s:
        item = s.scalar(select(ReviewItem))
        assert item.reason_code == "FACE_GREY_ZONE" and item.state == "open"
        assert {k: item.thresholds[k] for k in ("face_match_threshold", "face_mismatch_threshold",
                                                "proxy_face_max_distance", "face_engine")} == {
            "face_match_threshold": 0.15, "face_mismatch_threshold": 0.55, "proxy_face_max_distance": 0.56,
            "face_engine": "faceplugin-arcface"}
        assert 0.15 < item.measured["face_distance"] <= 0.55
        assert s.scalar(select(Anomaly)) is None


def test_near_copy_of_an_earlier_photo_is_photo_replay(world: World) -> None:
    first = world.checkin(face("people/obama/obama2.jpg"))
    assert first.json()["status"] == "passed"
    copy = photo("people/obama/obama2.jpg")
    copy = copy.resize((copy.width * 3 // 4, copy.height * 3 // 4))
    r = world.checkin(jpeg(copy, quality=60))  # resized and recompressed: other bytes, same picture
    assert codes(r) == ["PHOTO_REPLAY"]
    assert str(first.json()["id"]) in r.json()["message"]
    other = world.checkin(face("people/obama/obama1.jpg"))  # another photo of the same person
    assert other.json()["status"] == "passed"
    with world.client.app.state.db.session() as s:
        assert len(s.scalars(select(PhotoHash)).all()) == 3 + 3  # 3 enrolment photos + 3 check-ins


def test_enrolment_photo_resubmitted_is_photo_replay(world: World) -> None:
    image = photo("people/obama/obama.jpg")  # the enrolment photo, re-encoded (EXIF dropped)
    r = world.checkin(jpeg(image, quality=85))
    assert codes(r) == ["PHOTO_REPLAY"] and "人脸登记" in r.json()["message"]


def test_stale_exif_time_and_far_exif_gps_are_photo_replay(world: World) -> None:
    r = world.checkin(face("people/obama/obama3.jpg"))  # EXIF DateTimeOriginal 2010
    assert codes(r) == ["PHOTO_REPLAY"] and "EXIF" in r.json()["message"]
    image = photo("people/obama/obama1.jpg")
    exif = Image.Exif()
    now = datetime.now(UTC).astimezone().strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = now
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (26.0, 0.0, 0.0), 3: "E", 4: (103.0, 30.0, 0.0)})  # about 110 km from the venue
    r = world.checkin(encoded(image, "JPEG", exif=exif))
    assert codes(r) == ["PHOTO_REPLAY"] and "公里" in r.json()["message"]


def test_one_face_for_two_trainees_is_proxy_signin(world: World) -> None:
    assert world.checkin(face("people/obama/obama2.jpg")).json()["status"] == "passed"
    r = world.checkin(face("people/obama/obama1.jpg"), trainee_id=world.biden_id, device_id="phone-2")
    assert set(codes(r)) == {"FACE_MISMATCH", "PROXY_SIGNIN"}
    with world.client.app.state.db.session() as s:
        proxy = s.scalar(select(Anomaly).where(Anomaly.rule == "PROXY_SIGNIN"))
        assert proxy.evidence["other_trainee_id"] == world.obama_id
        assert proxy.evidence["nearest_other_distance"] <= 0.60 < 0.80 < proxy.evidence["face_distance"]


def test_one_device_for_many_trainees_is_proxy_signin(world: World) -> None:
    world.client.post(f"/api/v1/classes/{world.class_id}/roster", json={"trainee_ids": [world.stranger_id]},
                      headers=auth(world.admin))
    assert world.checkin(face("people/obama/obama2.jpg"), device_id="tablet").json()["status"] == "passed"
    assert world.checkin(face("people/obama/obama1.jpg"), device_id="tablet").json()["status"] == "passed"
    r = world.checkin(face("people/biden/biden2.jpg"), trainee_id=world.biden_id, device_id="tablet")
    assert r.json()["status"] == "passed"  # two trainees on one device: allowed
    r = world.checkin(face("people/rose_leslie/img2.jpg"), trainee_id=world.stranger_id, device_id="tablet")
    assert codes(r) == ["PROXY_SIGNIN"] and "3 名不同学员" in r.json()["message"]


def test_mock_location_and_poor_accuracy_are_gps_implausible(world: World) -> None:
    r = world.checkin(face("people/obama/obama2.jpg"), mock_location="true")
    assert codes(r) == ["GPS_IMPLAUSIBLE"] and "模拟定位" in r.json()["message"]
    lat, lon = offset_point(*VENUE, 0, 0)
    r = world.checkin(face("people/obama/obama1.jpg"), accuracy_m=800, latitude=lat, longitude=lon)
    assert "GPS_IMPLAUSIBLE" in codes(r) and "800 米" in r.json()["message"]


def test_impossible_speed_is_gps_implausible(world: World) -> None:
    then = datetime.now(UTC) - timedelta(minutes=10)
    first = world.checkin(face("people/obama/obama2.jpg"), captured_at=then.isoformat(), **far_fix(100_000))
    assert codes(first) == ["OUT_OF_FENCE"]
    r = world.checkin(face("people/obama/obama1.jpg"))  # at the venue: 100 km in 10 minutes
    assert codes(r) == ["GPS_IMPLAUSIBLE"] and "公里/小时" in r.json()["message"]


def test_walking_pace_is_not_gps_implausible(world: World) -> None:
    then = datetime.now(UTC) - timedelta(minutes=30)
    world.checkin(face("people/obama/obama2.jpg"), captured_at=then.isoformat(), **far_fix(2000))
    r = world.checkin(face("people/obama/obama1.jpg"))
    assert r.json()["status"] == "passed"


def test_identical_coordinates_from_another_device_are_gps_implausible(world: World) -> None:
    fix = {"latitude": "25.0433123", "longitude": "102.7058456"}
    assert world.checkin(face("people/obama/obama2.jpg"), device_id="a", **fix).json()["status"] == "passed"
    r = world.checkin(face("people/biden/biden2.jpg"), trainee_id=world.biden_id, device_id="b", **fix)
    assert codes(r) == ["GPS_IMPLAUSIBLE"] and "完全相同" in r.json()["message"]


def test_repeatedly_uncertain_fixes_become_out_of_fence(world: World) -> None:
    straddle = {"accuracy_m": 100, **far_fix(180)}
    photos = ["people/obama/obama2.jpg", "people/obama/obama1.jpg"]
    for p in photos:
        r = world.checkin(face(p), **straddle)
        assert r.json()["status"] == "passed" and r.json()["fence_result"] == "uncertain"
    r = world.checkin(jpeg(photo("people/obama/obama3.jpg")), **straddle)
    assert codes(r) == ["OUT_OF_FENCE"] and "第 3 次" in r.json()["message"]


def test_snapshot_replay_is_detected(world: World) -> None:
    assert world.snapshot(face("groups/two_people.jpg")).json()["status"] == "passed"
    again = photo("groups/two_people.jpg")
    r = world.snapshot(jpeg(again.resize((again.width // 2, again.height // 2)), quality=70))
    assert codes(r) == ["PHOTO_REPLAY"]


def test_operator_decides_a_review(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(face_match_threshold=0.15, face_mismatch_threshold=0.55)
    world = World.build(client)
    first = world.checkin(face("people/obama/obama2.jpg")).json()
    second = world.checkin(face("people/obama/obama1.jpg")).json()
    assert first["status"] == second["status"] == "review"
    items = client.get("/api/v1/reviews", headers=auth(world.operator)).json()
    assert len(items) == 2 and {i["checkin_id"] for i in items} == {first["id"], second["id"]}
    by_checkin = {i["checkin_id"]: i["id"] for i in items}
    r = client.post(f"/api/v1/reviews/{by_checkin[first['id']]}/decision",
                    json={"decision": "confirmed", "note": "电话核实本人在场"}, headers=auth(world.operator))
    assert r.status_code == 200 and r.json()["checkin_status"] == "passed"
    r = client.post(f"/api/v1/reviews/{by_checkin[second['id']]}/decision",
                    json={"decision": "rejected", "note": "与登记照不符"}, headers=auth(world.operator))
    assert r.json()["checkin_status"] == "failed"
    again = client.post(f"/api/v1/reviews/{by_checkin[second['id']]}/decision",
                        json={"decision": "confirmed", "note": "改判"}, headers=auth(world.operator))
    assert again.status_code == 409 and again.json()["code"] == "REVIEW_ALREADY_DECIDED"
    assert client.get(first["status_url"], headers=auth(world.site)).json()["status"] == "passed"
    with client.app.state.db.session() as s:
        anomaly = s.scalar(select(Anomaly))
        assert anomaly.rule == "FACE_MISMATCH" and anomaly.subject_id == second["id"]
        assert anomaly.evidence["decided_by"] == "值班员"
    r = client.post(f"/api/v1/reviews/{by_checkin[first['id']]}/decision", json={"decision": "confirmed",
                    "note": "x y"}, headers=auth(world.site))
    assert r.status_code == 403
