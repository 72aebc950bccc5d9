"""Inspection forms (《职业技能培训班检查表》, clause 十四): the checklist filled, photos and a handwritten signature
stored as evidence, a PDF whose digest is recorded; classes short of two inspections listed; sites see none of it."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import select

from models.clock import SHANGHAI
from models.tables import ClassSession
from monitor.decisions.inspection_form import CHECKLIST, visits_per_class
from tests.crew import Crew, build_crew
from tests.helpers import VENUE, auth, face, far_fix, issue_token_via_api


def signature_png() -> bytes:
    """A signature as the phone's canvas draws it: dark strokes on a transparent background."""
    img = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    pen.line([(40, 150), (120, 40), (180, 160), (260, 60), (330, 150), (420, 70), (560, 120)], fill="black", width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def items(problem: str | None = "headcount", note: str = "登记 3 人，实到 1 人") -> dict[str, Any]:
    filled: dict[str, Any] = {key: {"result": "ok"} for key in CHECKLIST}
    if problem:
        filled[problem] = {"result": "problem", "note": note}
    return filled


def file_form(crew: Crew, who: str = "county_a", alert_id: int | None = None, **overrides: Any) -> Any:
    form: dict[str, Any] = {"class_id": crew.world.class_id, "kind": "on_site", "items": json.dumps(items()),
                            "findings": "在场学员少于签到人数，疑似代签", "responsible_name": "张校长",
                            "headcount_present": 1}
    if alert_id is not None:
        form["alert_id"] = alert_id
    form.update(overrides)
    files = [("signature", ("sign.png", signature_png(), "image/png")),
             ("inspector_signature", ("mine.png", signature_png(), "image/png")),
             ("photos", ("room.jpg", face("groups/two_people.jpg"), "image/jpeg")),
             ("photos", ("board.jpg", face("people/obama/obama.jpg"), "image/jpeg"))]
    return crew.client.post("/api/v1/inspections", headers=auth(crew.tokens[who]),
                            data={k: str(v) for k, v in form.items()}, files=files)


def test_an_on_site_inspection_is_filed_with_signature_photos_and_a_pdf(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a")
    crew.post(f"/api/v1/alerts/{alert_id}/arrive", "county_a")
    r = file_form(crew, alert_id=alert_id)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert (filed["inspector"], filed["responsible_name"], filed["headcount_registered"]) == ("抽查员0", "张校长", 2)
    assert filed["items"]["headcount"] == {"result": "problem", "note": "登记 3 人，实到 1 人"}
    assert len(filed["photo_sha256s"]) == 2
    pdf = crew.client.get(filed["pdf_url"], headers=auth(crew.world.operator))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and hashlib.sha256(pdf.content).hexdigest() == filed["pdf_sha256"]
    assert pdf.headers["x-content-sha256"] == filed["pdf_sha256"]
    assert b"/Subtype /Image" in pdf.content  # the handwritten signature is on the printed form
    for sha in [filed["signature_sha256"], *filed["photo_sha256s"]]:
        assert crew.client.get(f"/api/v1/evidence/{sha}", headers=auth(crew.world.operator)).status_code == 200
        assert crew.client.get(f"/api/v1/evidence/{sha}", headers=auth(crew.world.site)).status_code == 404
    listed = crew.client.get(f"/api/v1/inspections?class_id={crew.world.class_id}",
                             headers=auth(crew.world.operator)).json()
    assert [i["id"] for i in listed] == [filed["id"]]
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.site)).status_code == 403
    assert crew.client.get(f"/api/v1/inspections/{filed['id']}",
                           headers=auth(crew.tokens["county_tied"])).status_code == 404  # recused
    crew.client.app.state.db.seal_audit()
    chain = crew.client.get("/api/v1/audit?subject_kind=inspections", headers=auth(crew.world.admin)).json()
    assert [(e["action"], e["actor"]) for e in chain] == [("inspections.insert", "抽查员0"),
                                                          ("inspections.update", "抽查员0")]
    assert chain[-1]["detail"] == {"pdf_sha256": filed["pdf_sha256"], "record_sha256": filed["record_sha256"]}
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                       {"outcome": "violation_confirmed", "note": f"见检查表 {filed['id']}"})
    assert closed.status_code == 200


def test_an_incomplete_or_unsigned_form_is_refused_and_nothing_is_kept(crew: Crew) -> None:
    missing = {k: v for k, v in items().items() if k != "teachers"}
    r = file_form(crew, items=json.dumps(missing))
    assert r.status_code == 422 and r.json()["code"] == "FORM_INCOMPLETE" and "教师资质" in r.json()["message"]
    r = file_form(crew, items=json.dumps(items(note="")))
    assert r.status_code == 422 and "须写明具体情况" in r.json()["message"]
    r = file_form(crew, items="[1, 2]")
    assert r.status_code == 422 and r.json()["code"] == "ITEMS_INVALID"
    jpeg_signature = crew.client.post(
        "/api/v1/inspections", headers=auth(crew.tokens["county_a"]),
        data={"class_id": str(crew.world.class_id), "kind": "on_site", "items": json.dumps(items(None)),
              "findings": "", "responsible_name": "张校长"},
        files=[("signature", ("s.jpg", face("people/obama/obama.jpg"), "image/jpeg")),
               ("inspector_signature", ("mine.png", signature_png(), "image/png"))])
    assert jpeg_signature.status_code == 422 and jpeg_signature.json()["code"] == "SIGNATURE_NOT_PNG"
    assert file_form(crew, who="county_tied").status_code == 404  # recused: the class does not exist for them
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.operator)).json() == []


def test_classes_short_of_two_inspections_are_listed_until_they_have_them(crew: Crew) -> None:
    def short() -> dict[int, int]:
        rows = crew.client.get("/api/v1/inspections/shortfall", headers=auth(crew.world.operator)).json()
        return {r["class_id"]: r["filed"] for r in rows}

    def short_for_county() -> list[int]:
        rows = crew.client.get("/api/v1/inspections/shortfall", headers=auth(crew.tokens["county_a"])).json()
        return [r["class_id"] for r in rows]

    assert short() == {crew.world.class_id: 0, crew.world.other_class_id: 0}
    assert short_for_county() == [crew.world.class_id]  # its own county's class only
    assert file_form(crew, items=json.dumps(items(None)), findings="").status_code == 201
    assert short()[crew.world.class_id] == 1
    # A second form the same day is the same visit: clause 十四's two inspections are visits on different days.
    assert file_form(crew, kind="phone", items=json.dumps(items(None)), findings="").status_code == 201
    assert short()[crew.world.class_id] == 1
    yesterday = datetime.now(SHANGHAI).replace(hour=10, minute=0) - timedelta(days=1)
    assert file_form(crew, kind="phone", items=json.dumps(items(None)), findings="",
                     inspected_at=yesterday.isoformat()).status_code == 201
    assert crew.world.class_id not in short()
    assert short_for_county() == []


def test_visits_count_by_day_or_by_session_as_configured() -> None:
    day = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    sessions = {1: [("08:30", "11:30"), ("14:00", "17:00")]}
    morning, morning_late, grace, afternoon = (day.replace(hour=h, minute=m) for h, m in
                                               ((9, 0), (11, 0), (11, 50), (15, 0)))
    next_morning = morning + timedelta(days=1)
    forms = [(1, morning), (1, morning_late), (1, afternoon), (1, next_morning), (2, morning), (2, afternoon)]
    assert visits_per_class(forms) == visits_per_class(forms, "day", sessions) == {1: 2, 2: 1}
    # By session: one day's morning and afternoon are two visits, two forms in one session (or its grace) one; a
    # class with no sessions on record counts by day.
    assert visits_per_class(forms, "session", sessions) == {1: 3, 2: 1}
    assert visits_per_class([(1, morning), (1, grace)], "session", sessions) == {1: 1}
    assert visits_per_class([(1, morning.astimezone(UTC)), (1, afternoon.astimezone(UTC))], "session",
                            sessions) == {1: 2}
    with pytest.raises(ValueError):
        visits_per_class(forms, "week", sessions)


def test_with_visits_by_session_a_morning_and_an_afternoon_form_are_two(
        client_factory: Callable[..., TestClient]) -> None:
    crew = build_crew(client_factory(dispatch_interval_seconds=3600, inspection_visit_unit="session"))
    with crew.client.app.state.db.session() as session:  # the class's one all-day session split in two
        whole = session.scalars(select(ClassSession).where(ClassSession.class_id == crew.world.class_id)).one()
        whole.name, whole.end_local = "上午", "11:59"
        session.add(ClassSession(class_id=crew.world.class_id, name="下午", start_local="12:00", end_local="23:59"))

    def short() -> dict[int, int]:
        rows = crew.client.get("/api/v1/inspections/shortfall", headers=auth(crew.world.operator)).json()
        return {r["class_id"]: r["filed"] for r in rows}

    yesterday = datetime.now(SHANGHAI).replace(hour=9, minute=0) - timedelta(days=1)
    for at in (yesterday, yesterday.replace(hour=10)):  # one session: one visit
        assert file_form(crew, items=json.dumps(items(None)), findings="",
                         inspected_at=at.isoformat()).status_code == 201
    assert short()[crew.world.class_id] == 1
    assert file_form(crew, items=json.dumps(items(None)), findings="",
                     inspected_at=yesterday.replace(hour=15).isoformat()).status_code == 201
    assert crew.world.class_id not in short()  # the same day's afternoon is the second visit
    report = crew.client.get("/api/v1/reports/daily", headers=auth(crew.world.admin)).json()
    assert crew.world.class_id not in {c["class_id"] for c in report["classes_short"]}


def test_a_visit_lies_within_the_class_and_has_a_person_behind_it(crew: Crew) -> None:
    before = datetime.now(SHANGHAI).replace(hour=10, minute=0) - timedelta(days=3)  # the class began yesterday
    r = file_form(crew, inspected_at=before.isoformat())
    assert r.status_code == 422 and r.json()["code"] == "INSPECTED_AT_OUTSIDE_CLASS" and "培训期" in r.json()["message"]
    later = datetime.now(SHANGHAI) + timedelta(hours=2)
    assert file_form(crew, inspected_at=later.isoformat()).status_code == 422
    region_only = issue_token_via_api(crew.client, crew.world.admin, "inspector", "区域令牌", regions=["530102"])
    crew.tokens["region_only"] = region_only
    r = file_form(crew, who="region_only")
    assert r.status_code == 403 and r.json()["code"] == "STAFF_TOKEN_REQUIRED"
    assert crew.client.get("/api/v1/inspections", headers=auth(region_only)).status_code == 200  # it reads


def test_the_daily_report_counts_inspections_and_lists_classes_short(crew: Crew) -> None:
    assert file_form(crew, items=json.dumps(items(None)), findings="").status_code == 201
    report = crew.client.get("/api/v1/reports/daily", headers=auth(crew.world.admin)).json()
    county = next(r for r in report["rows"] if r["code"] == "530102")
    assert (county["inspections"], county["classes_short"]) == (1, 1)
    assert report["inspections_required"] == 2
    assert {(c["class_id"], c["filed"]) for c in report["classes_short"]} == {
        (crew.world.class_id, 1), (crew.world.other_class_id, 0)}
    csv = crew.client.get("/api/v1/reports/daily.csv", headers=auth(crew.world.admin)).content.decode("utf-8-sig")
    assert "当日检查次数" in csv and "检查不足班次数" in csv


def test_the_class_ledger_lists_its_inspections_with_their_pdfs(crew: Crew) -> None:
    filed = file_form(crew, items=json.dumps(items(None)), findings="").json()
    ledger = crew.client.get(f"/api/v1/classes/{crew.world.class_id}/ledger", headers=auth(crew.world.admin)).json()
    assert [(i["id"], i["pdf_url"], i["pdf_sha256"]) for i in ledger["inspections"]] == [
        (filed["id"], filed["pdf_url"], filed["pdf_sha256"])]


def test_a_signature_whose_image_stream_is_broken_is_refused_and_nothing_is_kept(crew: Crew) -> None:
    broken = bytearray(signature_png())
    start = broken.index(b"IDAT") + 8
    for k in range(start, start + 24):
        broken[k] ^= 0xFF  # the header and IEND are intact: only decoding finds it
    r = crew.client.post(
        "/api/v1/inspections", headers=auth(crew.tokens["county_a"]),
        data={"class_id": str(crew.world.class_id), "kind": "on_site", "items": json.dumps(items(None)),
              "responsible_name": "张校长"},
        files=[("signature", ("s.png", bytes(broken), "image/png")),
               ("inspector_signature", ("mine.png", signature_png(), "image/png"))])
    assert r.status_code == 422 and r.json()["code"] == "SIGNATURE_UNREADABLE", r.text
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.operator)).json() == []


def test_the_form_names_the_staff_member_not_the_tokens_free_text(crew: Crew) -> None:
    """Whoever issues a token chooses its name; the form (JSON and PDF) and the phone check name the person the
    token is bound to, as registered."""
    r = crew.client.post("/api/v1/tokens", headers=auth(crew.world.admin), json={
        "role": "inspector", "name": "probe-prov", "staff_id": crew.staff["county_a"]})
    assert r.status_code == 201, r.text
    crew.tokens["free_text"] = r.json()["token"]
    filed = file_form(crew, who="free_text")
    assert filed.status_code == 201, filed.text
    assert filed.json()["inspector"] == "抽查员0"
    pdf = crew.client.get(filed.json()["pdf_url"], headers=auth(crew.world.operator))
    assert pdf.status_code == 200
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True, check=True).stdout.decode()
    assert "抽查员0" in text and "probe-prov" not in text


def drawn_png(draw: Any, size: tuple[int, int] = (600, 200)) -> bytes:
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw(ImageDraw.Draw(img))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("what", ["transparent 1×1", "blank canvas", "a dot", "a short tick", "a filled box"])
def test_a_signature_with_no_hand_in_it_is_refused_and_nothing_is_kept(crew: Crew, what: str) -> None:
    """A blank (the outside tester's 1×1 transparent PNG), a dot or a tick is not a signature, nor a box painted
    over: the printed form would show an empty line above 'signed by both sides'."""
    blank = {"transparent 1×1": drawn_png(lambda pen: None, (1, 1)),
             "blank canvas": drawn_png(lambda pen: None),
             "a dot": drawn_png(lambda pen: pen.ellipse((300, 100, 306, 106), fill="black")),
             "a short tick": drawn_png(lambda pen: pen.line([(300, 100), (320, 110)], fill="black", width=4)),
             "a filled box": drawn_png(lambda pen: pen.rectangle((0, 0, 599, 199), fill="black"))}[what]
    for which in ("signature", "inspector_signature"):
        files = [("signature", ("s.png", blank if which == "signature" else signature_png(), "image/png")),
                 ("inspector_signature", ("m.png", blank if which != "signature" else signature_png(), "image/png"))]
        r = crew.client.post(
            "/api/v1/inspections", headers=auth(crew.tokens["county_a"]),
            data={"class_id": str(crew.world.class_id), "kind": "on_site", "items": json.dumps(items(None)),
                  "responsible_name": "张校长"}, files=files)
        assert r.status_code == 422 and r.json()["code"] == "SIGNATURE_BLANK", (which, r.text)
        assert "签名" in r.json()["message"]
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.operator)).json() == []


def test_a_form_carries_the_inspectors_fix_marked_when_outside_the_fence(crew: Crew) -> None:
    far = far_fix(2000)
    outside = file_form(crew, fix=json.dumps({**far, "accuracy_m": 15, "captured_at": datetime.now(SHANGHAI)
                                              .isoformat()}))
    assert outside.status_code == 201, outside.text  # filed, not refused: the inspector may be at the door
    assert outside.json()["fix"]["fence_result"] == "outside"
    inside = file_form(crew, fix=json.dumps({"latitude": VENUE[0], "longitude": VENUE[1], "accuracy_m": 10,
                                             "captured_at": datetime.now(SHANGHAI).isoformat()}))
    assert inside.json()["fix"]["fence_result"] == "inside"
    bare = file_form(crew)
    assert bare.json()["fix"]["fence_result"] == "unproven"
    assert file_form(crew, fix="{not json").json()["code"] == "FIX_INVALID"
    ledger = crew.client.get(f"/api/v1/classes/{crew.world.class_id}/ledger", headers=auth(crew.world.admin)).json()
    assert [i["fence_result"] for i in ledger["inspections"]] == ["outside", "inside", "unproven"]


def test_findings_with_a_nul_character_are_a_clear_422_and_nothing_is_kept(crew: Crew) -> None:
    r = file_form(crew, findings="在场学员\x00少于签到人数")
    assert r.status_code == 422 and r.json()["code"] == "INVALID_TEXT", r.text
    assert crew.client.get("/api/v1/inspections", headers=auth(crew.world.admin)).json() == []


def test_another_regions_alert_on_a_form_reads_as_missing(crew: Crew) -> None:
    """An inspector naming an alert of a class outside their region on their own class's form is answered exactly
    as for an alert that does not exist (404 UNKNOWN_ALERT), not 403 NOT_ASSIGNEE: alert ids cannot be probed."""
    world = crew.world
    r = world.checkin(face("people/kit_harington/john1.jpeg"), token=world.other_site, class_id=world.other_class_id,
                      trainee_id=world.stranger_id)
    assert r.json()["status"] == "failed", r.text
    alerts = crew.client.get("/api/v1/alerts", headers=auth(world.operator)).json()
    foreign = next(a["id"] for a in alerts if a["class_id"] == world.other_class_id)
    answers = [(x.status_code, x.json()["code"]) for x in (file_form(crew, alert_id=foreign),
                                                            file_form(crew, alert_id=999_999))]
    assert answers == [(404, "UNKNOWN_ALERT")] * 2
