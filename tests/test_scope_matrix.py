"""Every route declares who may call it and what they may see; every role is tried on every route against
objects of another institution and another region, and nothing of theirs may come back."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from models.domain import Role
from models.scope import declared_roles as scope_roles
from models.tables import (
    Alert,
    Anomaly,
    ApiToken,
    CheckIn,
    Draw,
    FaceTemplate,
    Inspection,
    LivenessChallenge,
    Objection,
    OnlineHeartbeat,
    OnlineSession,
    PhoneCheck,
    ReviewItem,
    Snapshot,
    Teacher,
)
from tests.helpers import World, auth, face, issue_token_via_api

ALL = tuple(Role)


def declared_roles(route: APIRoute) -> tuple[Role, ...] | None:
    return scope_roles(route.dependant)


def api_routes(client: TestClient) -> list[APIRoute]:
    """Every API route of the app, included routers flattened, with its full path."""
    routes = [rc.route for rc in iter_route_contexts(client.app.routes)]
    return [r for r in routes if isinstance(r, APIRoute) and r.include_in_schema]


def test_every_route_declares_its_scope(client: TestClient) -> None:
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in api_routes(client) if declared_roles(r) is None]
    assert not undeclared, f"routes without an access() declaration: {undeclared}"
    public = [r.path for r in api_routes(client) if declared_roles(r) == ()]
    # the notice, the rule catalogue and the draws once published (一公开); a one-time sign-in link's redemption
    # (the code is the credential, outside /api/ where every route needs a token) and the printed forms'
    # verification (nothing personal)
    assert sorted(public) == ["/auth/sign-in", "/public/audit-anchors.json", "/public/draws.json",
                              "/public/notice.json", "/public/rules.json", "/verify/{sha256}"]


def tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 130, 140)).save(out, "PNG")
    return out.getvalue()


class Matrix:
    """Two institutions in two prefectures (Kunming 530102, Dali 532901), with uploads of every kind in each."""

    def __init__(self, world: World) -> None:
        self.w = world
        c, admin = world.client, world.admin
        self.tokens = {
            "admin": world.admin, "operator": world.operator,
            "auditor": issue_token_via_api(c, admin, "auditor", "审计"),
            "site": world.site,
            "inspector": issue_token_via_api(c, admin, "inspector", "昆明抽查", regions=["530100"]),
            "county_inspector": issue_token_via_api(c, admin, "inspector", "五华抽查", regions=["530102"]),
        }
        self.restricted = ("site", "inspector", "county_inspector")
        own = world.checkin(face("people/obama/obama2.jpg")).json()
        foreign_body = world.checkin(face("people/kit_harington/john2.jpeg"), token=world.other_site,
                                     trainee_id=world.stranger_id, class_id=world.other_class_id).json()
        assert foreign_body["status"] == "failed", foreign_body  # a FACE_MISMATCH anomaly and alert in Dali
        foreign_snapshot = world.snapshot(face("groups/two_people.jpg"), token=world.other_site,
                                          class_id=world.other_class_id).json()
        online = c.post("/api/v1/online/sessions", headers=auth(world.other_site),
                        json={"class_id": world.other_class_id, "trainee_id": world.stranger_id})
        assert online.status_code == 201, online.text
        dali_staff = self.dali_inspector()
        venues = c.get("/api/v1/venues", headers=auth(admin)).json()
        foreign_venue = next(v["id"] for v in venues if v["name"] == "教学楼1")
        camera = c.post(f"/api/v1/venues/{foreign_venue}/cameras", headers=auth(admin),
                        json={"name": "大理教室", "stream_url": "rtsp://u:p@10.0.0.9/live", "active": False})
        assert camera.status_code == 201, camera.text
        with c.app.state.db.session() as s:
            foreign_checkin = s.get(CheckIn, foreign_body["id"])
            assert foreign_checkin is not None
            review = ReviewItem(subject_kind="checkin", subject_id=foreign_checkin.id, class_id=world.other_class_id,
                                trainee_id=world.stranger_id, reason_code="FACE_GREY_ZONE", message="待复核",
                                measured={}, thresholds={}, state="open", created_at=datetime.now(UTC))
            s.add(review)
            s.flush()
            stranger_photo = s.scalar(select(FaceTemplate.photo_sha256).where(
                FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == world.stranger_id))
            foreign_teacher = s.scalar(select(Teacher).where(Teacher.name == "教师11"))
            assert foreign_teacher is not None
            foreign_alert = s.scalar(select(Alert.id).where(Alert.class_id == world.other_class_id))
            assert foreign_alert is not None
            phone_check = PhoneCheck(alert_id=foreign_alert, class_id=world.other_class_id, staff_id=None,
                                     inspector="大理抽查员", seed="0" * 32, drawn=[world.stranger_id], state="open",
                                     created_at=datetime.now(UTC))
            s.add(phone_check)
            inspection = Inspection(
                class_id=world.other_class_id, alert_id=foreign_alert, staff_id=None, inspector="大理抽查员",
                kind="on_site", items={}, headcount_registered=1, headcount_present=1, findings="",
                responsible_name="李校长", signature_sha256=foreign_body["photo_sha256"], photo_sha256s=[],
                pdf_sha256=foreign_body["photo_sha256"], inspected_at=datetime.now(UTC), created_at=datetime.now(UTC))
            s.add(inspection)
            draw = Draw(day=date(2026, 1, 5), seed="0" * 32, candidates=[], classes=[world.other_class_id],
                        inspectors={str(world.other_class_id): dali_staff}, roster=[],
                        window_ends_at=datetime.now(UTC) + timedelta(days=3), created_by="调度系统",
                        created_at=datetime.now(UTC))
            s.add(draw)
            # Dali's institution's objection to a finding against it (closed as a confirmed violation).
            closed = s.get(Alert, foreign_alert)
            assert closed is not None
            closed.state, closed.outcome = "closed", "violation_confirmed"
            objection = Objection(alert_id=foreign_alert, class_id=world.other_class_id,
                                  institution_id=self.institution_of(world.other_class_id),
                                  alert_outcome=closed.outcome,
                                  reason="学员当天全程在班，有签到表和录像为证，请复核", state="submitted",
                                  submitted_by="站点1", submitted_at=datetime.now(UTC),
                                  decide_by=datetime.now(UTC) + timedelta(days=10))
            s.add(objection)
            s.flush()
            self.foreign = {
                "class_id": world.other_class_id, "checkin_id": foreign_checkin.id,
                "snapshot_id": foreign_snapshot["id"], "session_id": online.json()["id"], "review_id": review.id,
                "sha256": foreign_body["photo_sha256"], "trainee_id": world.stranger_id,
                "teacher_id": foreign_teacher.id, "institution_id": self.institution_of(world.other_class_id),
                "alert_id": foreign_alert, "staff_id": dali_staff, "check_id": phone_check.id,
                "inspection_id": inspection.id, "draw_id": draw.id, "match_id": 1, "objection_id": objection.id,
                "request_id": 1,
                "venue_id": foreign_venue, "camera_id": camera.json()["id"],
                "token_id": s.scalar(select(ApiToken.id).where(ApiToken.name == "站点1")),  # Dali's site
            }
        self.own = {"class_id": world.class_id, "checkin_id": own["id"], "sha256": own["photo_sha256"],
                    "trainee_id": world.obama_id}
        # What must never reach a caller outside institution 1 / Dali: names, codes and photo digests.
        self.markers = ["测试培训学校1", "LIC-1", "TEST-1", "测试班1", "教学楼1", "罗晓燕", "教师11", "教师12",
                        foreign_body["photo_sha256"], foreign_snapshot["photo_sha256"], str(stranger_photo)]

    def dali_inspector(self) -> int:
        r = self.w.client.post("/api/v1/staff", headers=auth(self.w.admin), json={
            "name": "大理抽查员", "phone": "13800000001", "level": "county", "region_code": "532901"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def institution_of(self, class_id: int) -> int:
        r = self.w.client.get(f"/api/v1/classes/{class_id}", headers=auth(self.w.admin))
        return int(r.json()["institution_id"])

    def request_for(self, method: str, path: str, ids: dict[str, Any]) -> dict[str, Any]:
        """A plausible request for the route, aimed at the objects `ids` names."""
        w = self.w
        now = datetime.now(UTC).isoformat()
        checkin_form = {**w.checkin_form(), "trainee_id": str(ids.get("trainee_id", w.stranger_id)),
                        "class_id": str(ids["class_id"])}
        bodies: dict[str, dict[str, Any]] = {
            "POST /api/v1/check-ins": {"data": checkin_form, "files": {"photo": ("p.png", tiny_png(), "image/png")}},
            "POST /api/v1/snapshots": {"data": {"class_id": str(ids["class_id"]), "camera_id": "cam",
                                                "captured_at": now},
                                       "files": {"photo": ("p.png", tiny_png(), "image/png")}},
            "POST /api/v1/liveness/challenges": {"json": {"class_id": ids["class_id"],
                                                          "trainee_id": ids.get("trainee_id", w.stranger_id)}},
            "POST /api/v1/online/sessions": {"json": {"class_id": ids["class_id"],
                                                      "trainee_id": ids.get("trainee_id", w.stranger_id)}},
            "POST /api/v1/online/sessions/{session_id}/heartbeats": {
                "data": {"captured_at": now}, "files": {"photo": ("p.png", tiny_png(), "image/png")}},
            "POST /api/v1/reviews/{review_id}/decision": {"json": {"decision": "confirmed", "note": "核实无误"}},
            "POST /api/v1/classes/{class_id}/roster": {"json": {"trainee_ids": [w.obama_id]}},
            "PUT /api/v1/classes/{class_id}/liveness": {"json": {"required": True}},
            "PUT /api/v1/institutions/{institution_id}/blacklist": {"json": {"blacklisted": True, "reason": "x"}},
            "PUT /api/v1/teachers/{teacher_id}/blacklist": {"json": {"blacklisted": True, "reason": "x"}},
            "GET /api/v1/online/minutes": {"params": {"class_id": ids["class_id"]}},
            "POST /api/v1/alerts/{alert_id}/dismiss": {"json": {"note": "误报，已电话核实"}},
            "POST /api/v1/alerts/{alert_id}/reopen": {"json": {"note": "需再次核查"}},
            "POST /api/v1/alerts/{alert_id}/close": {"json": {"outcome": "false_alarm", "note": "已核实"}},
            "POST /api/v1/alerts/{alert_id}/dispatch": {"json": {}},
            "POST /api/v1/phone-checks/{check_id}/calls": {"json": {"trainee_id": ids.get("trainee_id", 1),
                                                                    "reached": False, "started_at": now,
                                                                    "ended_at": now, "page_now": now}},
            "POST /api/v1/staff/{staff_id}/duty": {"json": {"starts_at": now, "ends_at": "2099-01-01T00:00:00+08:00"}},
            "POST /api/v1/venues/{venue_id}/cameras": {"json": {"name": "新摄像头", "stream_url": "rtsp://10.0.0.8/a",
                                                               "active": False}},
            "PATCH /api/v1/cameras/{camera_id}": {"json": {"interval_seconds": 60}},
            "POST /api/v1/objections": {"json": {"alert_id": ids["alert_id"],
                                                 "reason": "学员当天全程在班，有签到表和录像为证，请复核"}},
            "POST /api/v1/objections/{objection_id}/decide": {"json": {
                "decision": "upheld", "note": "复核课堂录像，学员确系本人且全程在班，原结论依据不足"}},
            "POST /api/v1/staff/{staff_id}/ties": {"json": {"institution_id": ids.get("institution_id", 1),
                                                            "relation": "self"}},
        }
        return bodies.get(f"{method} {path}", {})


@pytest.fixture
def matrix(world: World) -> Matrix:
    return Matrix(world)


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def stored(world: World) -> dict[str, int]:
    with world.client.app.state.db.session() as s:
        counts = {m.__tablename__: len(s.scalars(select(m.id)).all())
                  for m in (CheckIn, Snapshot, ReviewItem, OnlineSession, OnlineHeartbeat, Anomaly, Objection)}
        counts["challenges"] = len(s.scalars(select(LivenessChallenge.id)).all())
        counts["ended"] = len(s.scalars(select(OnlineSession.id).where(OnlineSession.ended_at.is_not(None))).all())
        counts["decided"] = len(s.scalars(select(ReviewItem.id).where(ReviewItem.state != "open")).all())
        counts["objections_decided"] = len(s.scalars(select(Objection.id).where(Objection.state != "submitted")).all())
    return counts


def test_every_role_on_every_route_against_other_institutions_and_regions(matrix: Matrix) -> None:
    client = matrix.w.client
    schema_paths = client.get("/openapi.json").json()["paths"]
    walked = 0
    for route in api_routes(client):
        roles = declared_roles(route)
        assert roles is not None
        if roles == ():
            continue  # the public notice (公示): published to everyone by policy, names masked
        for method in sorted(route.methods - {"HEAD"}):
            assert route.path in schema_paths, route.path
            for who, token in matrix.tokens.items():
                role = Role(who.replace("county_", ""))
                before = stored(matrix.w)
                url = fill(route.path, matrix.foreign)
                r = client.request(method, url, headers=auth(token),
                                   **matrix.request_for(method, route.path, matrix.foreign))
                walked += 1
                where = (method, route.path, who, r.status_code, r.text[:300])
                if roles and role not in roles:
                    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN_ROLE", where
                    assert stored(matrix.w) == before, where
                    continue
                if who not in matrix.restricted:
                    continue
                if method != "GET" or "{" in route.path:  # aimed at another institution's or region's object
                    assert 400 <= r.status_code < 500, where
                    assert stored(matrix.w) == before, where
                    if method == "GET":
                        assert r.status_code == 404, where  # outside the scope looks exactly like missing
                elif r.status_code < 300:
                    leaked = [m for m in matrix.markers if m in r.text]
                    assert not leaked, (*where, leaked)
    assert walked >= 40 * len(matrix.tokens)


def test_scoped_roles_still_see_their_own(matrix: Matrix) -> None:
    """The matrix above cannot pass by refusing everything: own objects come back."""
    c = matrix.w.client
    own = matrix.own
    for who in ("site", "inspector", "county_inspector", "operator"):
        headers = auth(matrix.tokens[who])
        assert c.get(f"/api/v1/classes/{own['class_id']}", headers=headers).status_code == 200, who
        assert c.get(f"/api/v1/check-ins/{own['checkin_id']}", headers=headers).status_code == 200, who
        assert c.get(f"/api/v1/evidence/{own['sha256']}", headers=headers).status_code == 200, who
        assert [x["id"] for x in c.get("/api/v1/classes", headers=headers).json()] == (
            [own["class_id"]] if who != "operator" else [matrix.foreign["class_id"], own["class_id"]]), who
    for who in ("inspector", "county_inspector"):
        headers = auth(matrix.tokens[who])
        assert c.get(f"/api/v1/trainees/{own['trainee_id']}", headers=headers).json()["name"] == "欧建国"
        assert [i["name"] for i in c.get("/api/v1/institutions", headers=headers).json()] == ["测试培训学校0"]
        assert [v["name"] for v in c.get("/api/v1/venues", headers=headers).json()] == ["教学楼0"]
    operator = auth(matrix.tokens["operator"])
    assert {a["class_id"] for a in c.get("/api/v1/alerts", headers=operator).json()} >= {matrix.foreign["class_id"]}
    assert len(c.get("/api/v1/reviews", headers=operator).json()) >= 1
    inspector = auth(matrix.tokens["inspector"])
    assert c.get("/api/v1/reviews", headers=inspector).json() == []
    # The site reads its own findings and objections (none of Dali's); the center reads every objection.
    site = auth(matrix.tokens["site"])
    own_findings = c.get("/api/v1/site/findings", headers=site).json()
    assert own_findings["institution"]["name"] == "测试培训学校0"
    assert {a["class_id"] for a in own_findings["alerts"]} <= {own["class_id"]}
    assert c.get("/api/v1/objections", headers=site).json() == []
    for who in ("operator", "admin", "auditor"):
        listed = c.get("/api/v1/objections", headers=auth(matrix.tokens[who])).json()
        assert [o["id"] for o in listed] == [matrix.foreign["objection_id"]], who
    assert all(a["class_id"] == own["class_id"] for a in c.get("/api/v1/anomalies", headers=inspector).json())
