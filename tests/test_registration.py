"""Registration: regions from the first start, ID checks, fences and datums, class rules, face enrolment."""

import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models.domain import Datum
from monitor.decisions.geodesy import convert_from_wgs84, distance_m
from monitor.demo.world import make_id_number
from tests.helpers import World, auth, confirmed_violation, face, issue_token_via_api, jpeg, local_today


def test_all_prefectures_and_counties_exist_from_the_first_start(world: World) -> None:
    r = world.client.get("/api/v1/regions", headers=auth(world.operator))
    prefectures = r.json()
    assert len(prefectures) == 16
    assert sum(len(p["counties"]) for p in prefectures) == 129
    by_code = {p["code"]: p for p in prefectures}
    assert by_code["530100"]["name"] == "昆明市"
    assert by_code["533400"]["name"] == "迪庆藏族自治州"
    kunming = {c["code"]: c["name"] for c in by_code["530100"]["counties"]}
    assert kunming["530102"] == "五华区" and kunming["530181"] == "安宁市"
    assert all(c["code"].startswith(p["code"][:4]) for p in prefectures for c in p["counties"])


def test_regions_match_the_wall_map(world: World) -> None:
    import json
    from pathlib import Path

    geo = json.loads((Path(__file__).parents[1] / "web/static/vendor/yunnan.json").read_text(encoding="utf-8"))
    on_map = {f["id"]: f["properties"]["name"] for f in geo["features"]}
    regions = {p["code"]: p["name"] for p in world.client.get("/api/v1/regions", headers=auth(world.admin)).json()}
    assert on_map == regions


@pytest.mark.parametrize(("id_number", "problem"), [
    ("53010219950301123", "18位"),
    ("5301021995030112AX", "前17位"),
    ("530102199502301234", "出生日期"),
])
def test_invalid_id_numbers_are_refused(world: World, id_number: str, problem: str) -> None:
    r = world.client.post("/api/v1/trainees", json={"id_number": id_number, "name": "张三"}, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "INVALID_ID_NUMBER"
    assert problem in r.json()["message"]


def test_wrong_check_digit_is_refused_and_ids_are_masked(world: World) -> None:
    good = make_id_number("530102", date(1990, 1, 2), 7)
    bad = good[:17] + ("1" if good[17] != "1" else "2")
    r = world.client.post("/api/v1/trainees", json={"id_number": bad, "name": "张三"}, headers=auth(world.admin))
    assert r.status_code == 422 and "校验位" in r.json()["message"]
    r = world.client.post("/api/v1/trainees", json={"id_number": good, "name": "张三"}, headers=auth(world.admin))
    assert r.status_code == 201
    assert good not in r.text and r.json()["id_number_masked"] == good[:3] + "*" * 11 + good[-4:]
    again = world.client.post("/api/v1/trainees", json={"id_number": good, "name": "张三"}, headers=auth(world.admin))
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE_ID_NUMBER" and good not in again.text
    assert again.json()["detail"]["other"] == {"kind": "trainee", "id": r.json()["id"], "name": "张三"}


def class_body(world: World, **overrides: object) -> dict:
    today = local_today()
    body = {"code": "NEW-1", "name": "新班", "institution_id": world.ids["institution"], "venue_id": world.ids["venue"],
            "occupation_id": world.ids["occupation"], "start_date": today.isoformat(),
            "end_date": (today + timedelta(days=3)).isoformat(), "theory_teacher_id": world.ids["teachers"][0],
            "practical_teacher_id": world.ids["teachers"][1],
            "sessions": [{"name": "上午", "start": "08:30", "end": "12:00"}, {"name": "下午", "start": "14:00",
                                                                               "end": "17:30"}],
            "trainee_ids": [world.obama_id]}
    body.update(overrides)
    return body


def test_class_with_same_theory_and_practical_teacher_is_refused(world: World) -> None:
    t = world.ids["teachers"][0]
    r = world.client.post("/api/v1/classes", json=class_body(world, practical_teacher_id=t), headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "SAME_TEACHER_BOTH"
    assert "第九条" in r.json()["message"]


def test_class_of_blacklisted_institution_is_refused(world: World) -> None:
    r = world.client.put(f"/api/v1/institutions/{world.ids['institution']}/blacklist",
                         json={"blacklisted": True, "reason": "虚假培训", "alert_ids": [confirmed_violation(world)]},
                         headers=auth(world.admin))
    assert r.status_code == 200
    r = world.client.post("/api/v1/classes", json=class_body(world), headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "INSTITUTION_BLACKLISTED"


def test_class_with_blacklisted_teacher_or_unapproved_occupation_is_refused(world: World) -> None:
    occ = world.client.post("/api/v1/occupations", json={"code": "X-1", "name": "无标准工种",
                                                         "has_evaluation_body": False}, headers=auth(world.admin))
    r = world.client.post("/api/v1/classes", json=class_body(world, occupation_id=occ.json()["id"]),
                          headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "CLASS_NOT_ALLOWED" and "评价考核机构" in r.json()["message"]
    banned = world.client.put(f"/api/v1/teachers/{world.ids['teachers'][1]}/blacklist",
                              json={"blacklisted": True, "reason": "伪造学历证书",
                                    "alert_ids": [confirmed_violation(world, rule="TEACHER_MISMATCH")]},
                              headers=auth(world.admin))
    assert banned.status_code == 200  # a blacklisting states its reason
    r = world.client.post("/api/v1/classes", json=class_body(world), headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "TEACHER_BLACKLISTED"


def test_class_registration_stores_sessions_and_roster(world: World) -> None:
    r = world.client.post("/api/v1/classes", json=class_body(world), headers=auth(world.admin))
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(s["name"], s["start"], s["end"]) for s in body["sessions"]] == [
        ("上午", "08:30", "12:00"), ("下午", "14:00", "17:30")]
    assert body["trainee_ids"] == [world.obama_id]
    overlap = class_body(world, code="NEW-2", sessions=[{"name": "a", "start": "08:00", "end": "12:00"},
                                                        {"name": "b", "start": "11:00", "end": "13:00"}])
    r = world.client.post("/api/v1/classes", json=overlap, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "SESSIONS_OVERLAP"


@pytest.mark.parametrize("datum", [Datum.GCJ02, Datum.BD09])
def test_venue_drawn_on_a_chinese_map_is_stored_in_wgs84_with_the_original(world: World, datum: Datum) -> None:
    wgs = (25.0433, 102.7058)
    lat, lon = convert_from_wgs84(*wgs, datum)
    assert distance_m((lat, lon), wgs) > 300  # the offset that would false-alarm if compared raw
    r = world.client.post("/api/v1/venues", json={
        "institution_id": world.ids["institution"], "name": "地图上画的场地", "region_code": "530102",
        "datum": datum.value, "fence": {"shape": "circle", "center": {"lat": lat, "lon": lon}, "radius_m": 100}},
        headers=auth(world.admin))
    assert r.status_code == 201, r.text
    body = r.json()
    stored = (body["center_wgs84"]["lat"], body["center_wgs84"]["lon"])
    assert distance_m(stored, wgs) < 0.5
    assert body["original"]["datum"] == datum.value
    assert body["original"]["fence"]["center"] == {"lat": lat, "lon": lon}


def test_polygon_venue_fence(world: World) -> None:
    ring = [{"lat": 25.0420, "lon": 102.7040}, {"lat": 25.0420, "lon": 102.7075},
            {"lat": 25.0445, "lon": 102.7075}, {"lat": 25.0445, "lon": 102.7040}]
    r = world.client.post("/api/v1/venues", json={
        "institution_id": world.ids["institution"], "name": "校园", "region_code": "530102",
        "fence": {"shape": "polygon", "points": ring}}, headers=auth(world.admin))
    assert r.status_code == 201
    assert r.json()["shape"] == "polygon" and len(r.json()["polygon_wgs84"]) == 4
    r = world.client.post("/api/v1/venues", json={
        "institution_id": world.ids["institution"], "name": "坏围栏", "region_code": "530102",
        "fence": {"shape": "polygon", "points": ring[:2]}}, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "INVALID_FIELD"
    r = world.client.post("/api/v1/venues", json={
        "institution_id": world.ids["institution"], "name": "坏区划", "region_code": "530100",
        "fence": {"shape": "polygon", "points": ring}}, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "UNKNOWN_REGION"


def enrol(world: World, photos: list[bytes]):
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
    return world.client.post(f"/api/v1/trainees/{world.biden_id}/faces", files=files, headers=auth(world.admin))


def test_enrolment_takes_several_photos(world: World) -> None:
    r = enrol(world, [face("people/biden/biden2.jpg")])
    assert r.status_code == 201 and r.json()["face_templates"] == 2


def test_enrolment_refuses_no_face_several_faces_and_small_faces(world: World) -> None:
    small = Image.open(io.BytesIO(face("people/obama/obama.jpg")))
    small.thumbnail((150, 150))
    cases = [
        (jpeg(Image.new("RGB", (400, 400), (200, 180, 160))), "未检测到人脸"),
        (face("groups/two_people.jpg"), "检测到 2 张人脸"),
        (jpeg(small), "人脸过小"),
    ]
    for photo, reason in cases:
        r = enrol(world, [face("people/biden/biden2.jpg"), photo])
        assert r.status_code == 422 and r.json()["code"] == "ENROLMENT_PHOTO_REFUSED"
        assert reason in r.json()["message"] and "第 2 张" in r.json()["message"]
    r = world.client.get(f"/api/v1/trainees/{world.biden_id}", headers=auth(world.admin))
    assert r.json()["face_templates"] == 1  # all-or-nothing: the good first photo was not stored either


def broken_png(width: int = 300, height: int = 300) -> bytes:
    """A PNG whose header and chunk checksums are sound and whose compressed pixels are noise: it passes the upload's
    format check and fails only when decoded."""
    import os
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    noise = b"\x78\x9c" + os.urandom(5000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", noise) + chunk(b"IEND", b"")


def test_an_enrolment_photo_that_cannot_be_decoded_is_named_and_nothing_is_stored(world: World) -> None:
    """Outside tester: a PNG with a sound header and noise for pixels gave a plain-text 500 from the face scan."""
    r = world.client.post(f"/api/v1/trainees/{world.biden_id}/faces", headers=auth(world.admin), files=[
        ("photos", ("good.jpg", face("people/biden/biden2.jpg"), "image/jpeg")),
        ("photos", ("broken.png", broken_png(), "image/png"))])
    assert r.status_code == 422 and r.json()["code"] == "ENROLMENT_PHOTO_REFUSED", r.text
    assert "第 2 张：照片无法解码" in r.json()["message"]
    assert r.json()["detail"]["photos"] == [{"index": 1, "filename": "broken.png",
                                            "reason": "照片无法解码（文件内容已损坏）"}]
    r = world.client.get(f"/api/v1/trainees/{world.biden_id}", headers=auth(world.admin))
    assert r.json()["face_templates"] == 1


def test_enrolment_ignores_a_small_face_in_the_background_but_refuses_a_group(world: World) -> None:
    main = Image.open(io.BytesIO(face("people/biden/biden2.jpg"))).convert("RGB")
    poster = Image.open(io.BytesIO(face("people/obama/obama.jpg"))).convert("RGB")
    poster.thumbnail((main.width // 6, main.width // 6))  # a small portrait on the wall behind
    main.paste(poster, (4, 4))
    r = enrol(world, [jpeg(main)])
    assert r.status_code == 201, r.json()
    assert r.json()["face_templates"] == 2
    r = enrol(world, [face("groups/obama_and_biden.jpg")])  # three people of similar size: still refused
    assert r.status_code == 422 and "检测到 3 张人脸" in r.json()["message"]


def test_registration_needs_admin_and_tokens_are_scoped(world: World, client: TestClient) -> None:
    r = client.post("/api/v1/occupations", json={"code": "Y", "name": "工种"}, headers=auth(world.operator))
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN_ROLE"
    r = client.post("/api/v1/tokens", json={"role": "site", "name": "无机构"}, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "SITE_TOKEN_NEEDS_INSTITUTION"
    r = client.post("/api/v1/tokens", json={"role": "inspector", "name": "x"}, headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "INSPECTOR_NEEDS_REGIONS"
    assert issue_token_via_api(client, world.admin, "inspector", "大理", regions=["532900"]).startswith("mon_")
    assert issue_token_via_api(client, world.admin, "auditor", "审计").startswith("mon_")


def test_a_duplicate_registration_on_postgresql_leaves_no_id_number_in_its_log(client_factory, postgres_url: str
                                                                                ) -> None:
    from pathlib import Path

    import psycopg

    from models.domain import Role
    from monitor.adapters.tokens import issue_token

    client = client_factory(database_url=postgres_url)
    with client.app.state.db.session() as session:
        admin = issue_token(session, Role.ADMIN, "管理员")
    number = make_id_number("530102", date(1991, 4, 5), 31)
    with psycopg.connect(postgres_url) as conn:
        data_dir = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
    log = data_dir.parent / "log"
    assert log.is_file(), "the test cluster's server log (tests/conftest.py postgres_server)"
    for path, what in (("/api/v1/trainees", "学员"), ("/api/v1/teachers", "教师")):
        first = client.post(path, json={"id_number": number, "name": "张三"}, headers=auth(admin))
        assert first.status_code == 201
        again = client.post(path, json={"id_number": number, "name": "张三"}, headers=auth(admin))
        assert again.status_code == 409 and what in again.json()["message"] and number not in again.text
    assert number not in log.read_text(encoding="utf-8", errors="replace")
