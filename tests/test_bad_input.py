"""Every bad upload gets a clear 4xx (code + zh-CN message) and leaves the database and store unchanged."""

import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from monitor.demo.world import make_id_number
from tests.helpers import World, auth, face, jpeg

GOOD = "people/obama/obama2.jpg"


def bomb_png() -> bytes:
    """A tiny file that decodes to 400 million pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, "GIF")
    return out.getvalue()


def png_with_huge_profile() -> bytes:
    """A whole PNG carrying a 5 MB colour profile, over what Pillow will unpack from one chunk."""
    import os

    out = io.BytesIO()
    Image.new("RGB", (300, 300), (100, 120, 140)).save(out, "PNG", icc_profile=os.urandom(5_000_000))
    return out.getvalue()


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


CASES: list[tuple[str, Callable[[World], dict], int, str]] = [
    ("empty file", lambda w: {"photo": b""}, 422, "EMPTY_FILE"),
    ("truncated jpeg", lambda w: {"photo": face(GOOD)[: len(face(GOOD)) // 2]}, 422, "CORRUPT_IMAGE"),
    ("text named .jpg", lambda w: {"photo": "这不是图片".encode() * 100}, 415, "NOT_AN_IMAGE"),
    ("gif", lambda w: {"photo": gif()}, 415, "UNSUPPORTED_IMAGE_FORMAT"),
    ("5 MB colour profile", lambda w: {"photo": png_with_huge_profile()}, 422, "IMAGE_METADATA_TOO_LARGE"),
    # the head of an iPhone photo: an ISO-BMFF ftyp box of brand heic (Pillow here reads no HEIF)
    ("heic", lambda w: {"photo": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 4000}, 415,
     "UNSUPPORTED_IMAGE_FORMAT"),
    ("decompression bomb", lambda w: {"photo": bomb_png()}, 413, "IMAGE_TOO_MANY_PIXELS"),
    ("latitude 91", lambda w: {"latitude": 91}, 422, "INVALID_COORDINATES"),
    ("longitude -181", lambda w: {"longitude": -181}, 422, "INVALID_COORDINATES"),
    ("latitude NaN", lambda w: {"latitude": "NaN"}, 422, "INVALID_COORDINATES"),
    ("longitude inf", lambda w: {"longitude": "inf"}, 422, "INVALID_COORDINATES"),
    ("null island", lambda w: {"latitude": 0, "longitude": 0}, 422, "NULL_ISLAND"),
    ("new york", lambda w: {"latitude": 40.71, "longitude": -74.0}, 422, "OUTSIDE_SERVICE_AREA"),
    ("latitude not a number", lambda w: {"latitude": "north"}, 422, "INVALID_FIELD"),
    ("negative accuracy", lambda w: {"accuracy_m": -5}, 422, "INVALID_ACCURACY"),
    ("accuracy 50 km", lambda w: {"accuracy_m": 50_000}, 422, "ACCURACY_TOO_POOR"),
    ("accuracy 1e308 m", lambda w: {"accuracy_m": 1e308}, 422, "ACCURACY_TOO_POOR"),
    ("captured tomorrow", lambda w: {"captured_at": ago(days=-1)}, 422, "CAPTURED_AT_IN_FUTURE"),
    ("captured last year", lambda w: {"captured_at": ago(days=365)}, 422, "CAPTURED_AT_TOO_OLD"),
    ("captured garbage", lambda w: {"captured_at": "yesterday-ish"}, 422, "INVALID_CAPTURED_AT"),
    ("unknown kind", lambda w: {"kind": "lunch"}, 422, "INVALID_FIELD"),
    ("missing trainee", lambda w: {"trainee_id": None}, 422, "MISSING_FIELD"),
    ("unknown trainee", lambda w: {"trainee_id": 99_999}, 404, "UNKNOWN_TRAINEE"),
    ("unknown class", lambda w: {"class_id": 99_999}, 404, "UNKNOWN_CLASS"),
    # another institution's trainee reads as missing: a site cannot tell which trainee ids exist elsewhere
    ("another institution's trainee", lambda w: {"trainee_id": w.stranger_id}, 404, "UNKNOWN_TRAINEE"),
    ("another institution's class", lambda w: {"class_id": w.other_class_id}, 404, "UNKNOWN_CLASS"),
    ("operator token uploading", lambda w: {"token": w.operator}, 403, "FORBIDDEN_ROLE"),
    ("no token", lambda w: {"token": ""}, 401, "AUTH_REQUIRED"),
    ("forged token", lambda w: {"token": "mon_forged"}, 401, "AUTH_INVALID"),
    ("empty device id", lambda w: {"device_id": "  "}, 422, "MISSING_FIELD"),
]


@pytest.fixture(scope="module")
def world(shared_world: World) -> World:
    """Every test here is refused and stores nothing (each checks that against its own `before`)."""
    return shared_world


@pytest.mark.parametrize(("label", "make", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_checkin_is_refused_and_stores_nothing(world: World, label: str, make, status: int, code: str) -> None:
    before = world.stored()
    spec = make(world)
    photo = spec.pop("photo", face(GOOD))
    token = spec.pop("token", world.site)
    form = world.checkin_form(**{k: v for k, v in spec.items() if v is not None})
    for k in [k for k, v in spec.items() if v is None]:
        form.pop(k)
    headers = auth(token) if token else {}
    r = world.client.post("/api/v1/check-ins", data=form, files={"photo": ("selfie.jpg", photo, "image/jpeg")},
                          headers=headers)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code
    assert body["message"] and any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])  # zh-CN
    assert not re.search(r"Input should|Expected|exceeds|pixels|could be", body["message"])  # no library English
    assert len(body["message"]) < 200 and not re.search(r"\d{12}", body["message"])  # no 309-digit numbers
    assert world.stored() == before


def test_replayed_photo_is_refused(world: World) -> None:
    assert world.checkin(face(GOOD)).status_code == 201
    before = world.stored()
    r = world.checkin(face(GOOD))
    assert r.status_code == 409 and r.json()["code"] == "PHOTO_REPLAYED"
    assert world.stored() == before


def test_body_over_limit_is_refused(world: World) -> None:
    before = world.stored()
    limit = world.client.app.state.settings.max_body_bytes
    big = jpeg(Image.effect_noise((800, 800), 80), quality=98)
    r = world.checkin(big * (limit // len(big) + 1))
    assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"
    assert "15 MB" in r.json()["message"]
    assert world.stored() == before


def test_chunked_body_over_limit_is_refused(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(max_body_bytes=1_000_000)
    w = World.build(client)
    before = w.stored()

    def chunks():
        yield b'--zzz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
        yield b"Content-Type: image/jpeg\r\n\r\n"
        for _ in range(150):
            yield b"x" * 10_000
        yield b"\r\n--zzz--\r\n"

    r = client.post("/api/v1/check-ins", content=chunks(),
                    headers={**auth(w.site), "content-type": "multipart/form-data; boundary=zzz"})
    assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"
    assert w.stored() == before


def test_malformed_multipart_is_a_clear_400(world: World) -> None:
    before = world.stored()
    r = world.client.post("/api/v1/check-ins", content=b"--zzz\r\ngarbage",
                          headers={**auth(world.site), "content-type": "multipart/form-data; boundary=zzz"})
    assert r.status_code in (400, 422)
    assert r.json()["code"] in ("MALFORMED_REQUEST", "MISSING_FIELD")
    assert world.stored() == before


def test_bad_snapshots_are_refused(world: World) -> None:
    before = world.stored()
    r = world.snapshot(b"GIF89a not really")
    assert r.status_code == 415 and r.json()["code"] == "NOT_AN_IMAGE"
    r = world.snapshot(face("groups/two_people.jpg"), class_id=world.other_class_id)
    missing = world.snapshot(face("groups/two_people.jpg"), class_id=999_999)
    assert (r.status_code, r.json()) == (missing.status_code, {**missing.json(), "message": r.json()["message"]})
    assert r.status_code == 404 and r.json()["code"] == "UNKNOWN_CLASS"  # no oracle: as if it did not exist
    r = world.snapshot(face("groups/two_people.jpg"), captured_at="2020-01-01T08:00:00+08:00")
    assert r.status_code == 422 and r.json()["code"] == "CAPTURED_AT_TOO_OLD"
    assert world.stored() == before


def test_trainee_without_face_templates_is_refused(world: World) -> None:
    r = world.client.post("/api/v1/trainees", json={"id_number": make_id_number("530102", date(1995, 3, 9), 123),
                                                    "name": "无照片"}, headers=auth(world.admin))
    assert r.status_code == 201, r.text
    trainee_id = r.json()["id"]
    world.client.post(f"/api/v1/classes/{world.class_id}/roster", json={"trainee_ids": [trainee_id]},
                      headers=auth(world.admin))
    before = world.stored()
    r = world.checkin(face(GOOD), trainee_id=trainee_id)
    assert r.status_code == 422 and r.json()["code"] == "NOT_ENROLLED"
    assert world.stored() == before


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_a_draw_for_a_day_out_of_range_is_a_clear_422(world: World, day: str) -> None:
    r = world.client.post("/api/v1/draws", json={"day": day}, headers=auth(world.operator))
    assert r.status_code == 422 and r.json()["code"] == "INVALID_DAY" and "超出范围" in r.json()["message"]


def test_a_draw_for_another_day_than_today_is_refused(world: World) -> None:
    """Outside tester: tomorrow's daily draw could be made today (its targets known a day early, and the clock's own
    draw then refused), and a past day's was published at once with its window starting after its end."""
    from datetime import timedelta

    from tests.helpers import local_today

    for day in (local_today() + timedelta(days=1), local_today() - timedelta(days=6)):
        r = world.client.post("/api/v1/draws", json={"day": day.isoformat()}, headers=auth(world.operator))
        assert r.status_code == 422 and r.json()["code"] == "DRAW_DAY_NOT_TODAY", r.text
        assert local_today().isoformat() in r.json()["message"]
    assert world.client.get("/api/v1/draws", headers=auth(world.operator)).json() == []
    r = world.client.post("/api/v1/draws", json={"day": local_today().isoformat()}, headers=auth(world.operator))
    assert r.status_code == 201, r.text


def test_a_class_dated_out_of_range_is_refused(world: World) -> None:
    r = world.client.post("/api/v1/classes", headers=auth(world.admin), json={
        "code": "OLD-1", "name": "远古班次", "institution_id": world.ids["institution"], "venue_id": world.ids["venue"],
        "occupation_id": world.ids["occupation"], "start_date": "0001-01-01", "end_date": "0001-01-02",
        "theory_teacher_id": world.ids["teachers"][0], "practical_teacher_id": world.ids["teachers"][1],
        "sessions": [{"name": "上午", "start": "08:30", "end": "11:30"}]})
    assert r.status_code == 422


def test_a_list_naming_one_record_many_times_names_it_once(client_factory: Callable[..., TestClient]) -> None:
    """A roster of 500 copies of one trainee (the schema's maximum) adds the trainee once; a cross-check of one
    class named 500 times checks that class once. Repeats used to reach the database as one condition each (a 503
    that no retry could cure, and counts inflated)."""
    world = World.build(client_factory())  # its own: the module's shared world is left as found
    client = world.client
    r = client.post(f"/api/v1/classes/{world.other_class_id}/roster", headers=auth(world.admin),
                    json={"trainee_ids": [world.biden_id] * 500})
    assert r.status_code == 200, r.text
    assert r.json()["trainee_ids"].count(world.biden_id) == 1
    once = client.post("/api/v1/crosschecks", headers=auth(world.admin), json={"class_ids": [world.class_id]})
    many = client.post("/api/v1/crosschecks", headers=auth(world.admin), json={"class_ids": [world.class_id] * 500})
    assert once.status_code == many.status_code == 200, many.text
    assert (many.json()["classes"], many.json()["trainees"]) == (once.json()["classes"], once.json()["trainees"])
    from monitor.api.crosschecks import CrossCheckIn
    assert CrossCheckIn(class_ids=[3, 1, 3, 2, 1] * 100).class_ids == [3, 1, 2]  # first places kept


def test_validation_messages_are_chinese_whatever_pydantic_says(world: World) -> None:
    """Field errors are told in zh-CN from pydantic's error type and context; its English never reaches a user."""
    c, admin = world.client, auth(world.admin)
    answers = {
        "须不小于 1": c.get("/api/v1/check-ins/0", headers=admin),
        "必须是列表": c.post(f"/api/v1/classes/{world.class_id}/roster", headers=admin, json={"trainee_ids": "x"}),
        "必须是 JSON 对象": c.post(f"/api/v1/classes/{world.class_id}/roster", headers=admin,
                               json={"trainee_ids": [world.obama_id], "declarations": [5]}),
        "取值须为 site、operator、inspector、admin、auditor 之一": c.post(
            "/api/v1/tokens", headers=admin, json={"role": "nobody", "name": "值班员"}),
        "最多 100 个字符": c.post("/api/v1/tokens", headers=admin, json={"role": "operator", "name": "x" * 101}),
        # a name that reads as another's (a zero-width space: outside tester), or no name at all
        "不可见字符": c.post("/api/v1/tokens", headers=admin, json={"role": "operator", "name": "值班员\u200b"}),
        "须含有文字或数字": c.post("/api/v1/tokens", headers=admin, json={"role": "operator", "name": "--"}),
        "软连字符": c.post("/api/v1/staff", headers=admin, json={"name": "抽查员\u00ad", "phone": "13900000000",
                                                             "level": "province", "region_code": "530000"}),
        "必须是上传的文件": c.post("/api/v1/check-ins", headers=auth(world.site), data={
            "photo": "text", "trainee_id": "1", "class_id": "1", "kind": "sign_in", "captured_at": "x",
            "latitude": "1", "longitude": "1", "accuracy_m": "1", "device_id": "d"}),
        # the body itself, not a field named 请求正文 or 1 (outside tester: "字段 1 不是有效的 JSON")
        "请求正文不是有效的 JSON（约第 17 个字符处）": c.post(
            "/api/v1/occupations", headers={**admin, "Content-Type": "application/json"},
            content=b'{"code": "6-0"  "name": "x"}'),
        "请求正文必须是 JSON 对象": c.post("/api/v1/occupations", headers=admin, json=[1]),
    }
    for phrase, r in answers.items():
        message = r.json()["message"]
        assert r.status_code == 422 and phrase in message, message
        assert not re.search(r"Input should|Expected|[Vv]alue error|received", message), message


def test_describe_field_error_never_passes_english_on() -> None:
    from monitor.api.http import describe_field_error

    assert describe_field_error({"type": "timezone_aware", "msg": "Input should have timezone info"}) == \
        "须带时区（如 +08:00）"
    assert describe_field_error({"type": "value_error", "msg": "Value error, 经度超出范围"}) == "无效：经度超出范围"
    assert describe_field_error({"type": "value_error", "msg": "Value error, day value is outside expected range"}) \
        == "取值无效"
    assert describe_field_error({"type": "something_new", "msg": "An English sentence"}) == "取值无效"
    assert describe_field_error({"type": "string_too_long", "msg": "x"}) == "取值无效"  # no context to fill in


def test_a_statement_sqlite_cannot_run_is_not_called_a_database_outage() -> None:
    """503 + Retry-After is for a database that is out of reach (locked past its wait, connection lost); SQLite's
    'operational' errors about the statement itself would fail the same on every retry."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from monitor.api.http import is_unavailable

    def raised(text: str) -> OperationalError:
        return OperationalError("SELECT …", {}, sqlite3.OperationalError(text))

    assert is_unavailable(raised("database is locked")) and is_unavailable(raised("disk I/O error"))
    assert not is_unavailable(raised("Expression tree is too large (maximum depth 1000)"))
    assert not is_unavailable(raised("too many SQL variables"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_nul_in_a_query_or_path_is_a_clear_422_on_every_database(
        backend: str, client_factory: Callable[..., TestClient], request: pytest.FixtureRequest) -> None:
    """PostgreSQL cannot hold a NUL in text: an auditor's filter with one was a plain-text 500 there and 200 on
    SQLite; now both refuse it before any route."""
    extra = {"database_url": request.getfixturevalue("postgres_url")} if backend == "postgresql" else {}
    world = World.build(client_factory(**extra))
    for path in ("/api/v1/audit?actor=a%00b", "/api/v1/audit/export?format=csv&actor=a%00b",
                 "/api/v1/classes?x=%00", "/api/v1/classes/1%00"):
        r = world.client.get(path, headers=auth(world.admin))
        assert r.status_code == 422 and r.json()["code"] == "NUL_IN_ADDRESS", (path, r.status_code, r.text)
    assert world.client.get("/api/v1/audit?actor=a%01b", headers=auth(world.admin)).status_code == 200


def test_a_trainee_of_the_site_on_another_class_is_not_on_roster_and_a_foreign_one_is_unknown(
        client_factory: Callable[..., TestClient]) -> None:
    """A site's own trainee uploaded for the wrong class is told so (422 NOT_ON_ROSTER); another institution's
    trainee answers exactly as an id that does not exist (404 UNKNOWN_TRAINEE), for check-ins, liveness challenges
    and online sessions alike."""
    world = World.build(client_factory())
    admin = auth(world.admin)
    own = world.client.post("/api/v1/trainees", json={"id_number": make_id_number("530102", date(1996, 4, 2), 321),
                                                      "name": "本机构学员"}, headers=admin).json()["id"]
    world.client.post(f"/api/v1/trainees/{own}/faces", files=[("photos", ("p.jpg", face(GOOD), "image/jpeg"))],
                      headers=admin)
    today = date.today()
    r = world.client.post("/api/v1/classes", headers=admin, json={
        "code": "TEST-OTHER", "name": "本机构另一班", "institution_id": world.ids["institution"],
        "venue_id": world.ids["venue"], "occupation_id": world.ids["occupation"],
        "start_date": today.isoformat(), "end_date": today.isoformat(), "theory_teacher_id": world.ids["teachers"][0],
        "practical_teacher_id": world.ids["teachers"][1],
        "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}], "trainee_ids": [own]})
    assert r.status_code == 201, r.text
    before = world.stored()
    answers = {}
    for who, trainee_id in (("own", own), ("foreign", world.stranger_id), ("missing", 99_999)):
        checkin = world.checkin(face(GOOD), trainee_id=trainee_id)
        challenge = world.client.post("/api/v1/liveness/challenges", headers=auth(world.site),
                                      json={"class_id": world.class_id, "trainee_id": trainee_id})
        online = world.client.post("/api/v1/online/sessions", headers=auth(world.site),
                                   json={"class_id": world.class_id, "trainee_id": trainee_id})
        answers[who] = [(x.status_code, x.json()["code"]) for x in (checkin, challenge, online)]
    assert answers["own"][:2] == [(422, "NOT_ON_ROSTER")] * 2
    assert answers["foreign"] == answers["missing"] and answers["missing"][:2] == [(404, "UNKNOWN_TRAINEE")] * 2
    assert world.stored() == before
