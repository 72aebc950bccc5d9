"""Simulated spot-check staff for the demo: a county inspector for each class's county and one at the province,
on duty now; each round they answer their pages over the API as people would (most accept, some let a page lapse
so it escalates), go on site or phone the drawn trainees, file the inspection form with a drawn signature, and close
the alert with an outcome, so the wall screen shows alerts moving through their states."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from PIL import Image, ImageDraw

from models.clock import utc_now
from monitor.decisions.inspection_form import CHECKLIST
from monitor.decisions.phone_check import MIN_REACHED_CALL_S
from monitor.demo.world import demo_phone

log = logging.getLogger(__name__)

OUTCOMES = [("violation_confirmed", "现场核实：存在代签或人员不符，已责令整改"),
            ("false_alarm", "现场核实：学员本人在班，系拍照光线所致"),
            ("could_not_verify", "学员已离开教室，无法当场核实，建议下次抽查")]


def signature_png(rng: random.Random) -> bytes:
    """A handwritten-looking signature: a few random strokes on a transparent canvas."""
    img = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    x, points = 30, []
    while x < 450:
        points.append((x, rng.randint(40, 130)))
        x += rng.randint(25, 60)
    pen.line(points, fill="black", width=5)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


class InspectorCrew:
    """The demo's inspectors and what each does on one round."""

    def __init__(self, http: httpx.Client, admin_token: str, seed: int,
                 on_hired: Callable[[str, str, str], None] | None = None) -> None:
        self.http = http
        self.on_hired = on_hired  # (name, region, token): the demo prints where their phone page is
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.rng = random.Random(seed)
        self.tokens: dict[int, str] = {}  # staff id -> token
        self.regions: set[str] = set()  # regions already staffed
        self.lapsed: set[int] = set()  # alert ids whose first page this crew lets expire
        self.checks: dict[int, dict[str, Any]] = {}  # alert id -> its phone check

    def counties(self) -> list[str]:
        """The counties of the registered classes' venues."""
        venues = {v["id"]: v["region_code"] for v in self.http.get("/api/v1/venues", headers=self.admin).json()}
        return sorted({venues[c["venue_id"]] for c in self.http.get("/api/v1/classes", headers=self.admin).json()
                       if c["venue_id"] in venues})

    def hire(self, counties: list[str], now: datetime | None = None) -> int:
        """A county inspector for each county not staffed yet, and one at the province, on duty for a day."""
        now = now or utc_now()
        hired = 0
        for level, region in [("county", c) for c in counties] + [("province", "530000")]:
            if region in self.regions:
                continue
            name = f"{'省级' if level == 'province' else '县区'}抽查员{len(self.tokens) + 1}"
            staff = self.http.post("/api/v1/staff", headers=self.admin, json={
                "name": name, "phone": demo_phone(1000 + len(self.tokens)), "level": level, "region_code": region})
            staff.raise_for_status()
            staff_id = staff.json()["id"]
            self.http.post(f"/api/v1/staff/{staff_id}/duty", headers=self.admin, json={
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=24)).isoformat()}).raise_for_status()
            token = self.http.post("/api/v1/tokens", headers=self.admin, json={
                "role": "inspector", "name": name, "staff_id": staff_id})
            token.raise_for_status()
            self.tokens[staff_id] = token.json()["token"]
            self.regions.add(region)
            hired += 1
            if self.on_hired is not None:
                self.on_hired(name, region, self.tokens[staff_id])
        return hired

    def run(self, stop: Any, interval_s: float = 4.0) -> None:
        """Staff the classes' counties as they are registered, then act every `interval_s` until `stop` is set."""
        while not stop.wait(interval_s):
            try:
                self.hire(self.counties())
                self.step()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.info("demo inspectors: %s", exc)

    def step(self) -> int:
        """Each inspector takes one action on each of their alerts; returns how many actions were taken."""
        done = 0
        for staff_id, token in list(self.tokens.items()):
            auth = {"Authorization": f"Bearer {token}"}
            for alert in self.http.get("/api/v1/my/alerts", headers=auth).json():
                try:
                    done += self.act(staff_id, auth, alert)
                except httpx.HTTPError as exc:
                    log.info("demo inspector %s: %s", staff_id, exc)
        return done

    def act(self, staff_id: int, auth: dict[str, str], alert: dict[str, Any]) -> int:
        base = f"/api/v1/alerts/{alert['id']}"
        state = alert["state"]
        if state == "dispatched":
            paged = any(p["staff_id"] == staff_id and p["state"] == "paged" for p in alert["pages"])
            if not paged or alert["id"] in self.lapsed:
                return 0
            if self.rng.random() < 0.2:  # busy: the page lapses and goes to the next inspector
                self.lapsed.add(alert["id"])
                return 0
            return self.post(f"{base}/accept", auth)
        if alert.get("assignee_staff_id") != staff_id:
            return 0
        if state == "accepted":
            if self.rng.random() < 0.5:
                check = self.http.post(f"{base}/phone-checks", headers=auth)
                if check.status_code == 201:
                    self.checks[alert["id"]] = check.json()
                    return 1
            venue = alert.get("venue") or {}
            if venue.get("lat") is None:
                return self.post(f"{base}/arrive", auth)
            # The phone's fix at the door of the venue (within the fence), as a real inspector's would be.
            fix = {"latitude": venue["lat"] + self.rng.uniform(-0.0003, 0.0003),
                   "longitude": venue["lon"] + self.rng.uniform(-0.0003, 0.0003),
                   "accuracy_m": round(self.rng.uniform(8, 25), 1), "captured_at": utc_now().isoformat()}
            return self.post(f"{base}/arrive", auth, {"fix": fix})
        if state == "phoning":
            return self.phone(base, auth, alert)
        if state == "on_site":
            return self.inspect(base, auth, alert)
        return 0

    def post(self, path: str, auth: dict[str, str], body: dict[str, Any] | None = None) -> int:
        r = self.http.post(path, headers=auth, json=body or {})
        return 1 if r.status_code < 400 else 0

    def phone(self, base: str, auth: dict[str, str], alert: dict[str, Any]) -> int:
        check = self.checks.get(alert["id"])
        if check is None:
            return self.post(f"{base}/close", auth, {"outcome": "could_not_verify",
                                                      "note": "电话抽查记录缺失，无法判断学员是否在班"})
        called = check.setdefault("called", 0)
        if called < len(check["trainees"]):  # one call at a time, each after the last, as a person dials them
            trainee = check["trainees"][called]
            # Only a number on file can be reached; the call's times are the page's: from the end of the last call
            # (or the draw) to now, at most the time a call takes; a reached call needs a few seconds of talk.
            reached = trainee["has_phone"] and self.rng.random() < 0.85
            free_since = datetime.fromisoformat(check.get("last_end") or check["created_at"]) + timedelta(seconds=1)
            ended = utc_now() - timedelta(seconds=0.5)
            talk = min((ended - free_since).total_seconds(), self.rng.uniform(8, 40) if reached else 15)
            if talk < (MIN_REACHED_CALL_S + 1 if reached else 0):
                return 0  # the line is still busy: the next round makes the call
            self.http.post(f"/api/v1/phone-checks/{check['id']}/calls", headers=auth, json={
                "trainee_id": trainee["trainee_id"], "reached": reached, "present": (self.rng.random() < 0.9)
                if reached else None, "answers": "本人接听，确认在班学习" if reached else None,
                "started_at": (ended - timedelta(seconds=talk)).isoformat(), "ended_at": ended.isoformat(),
                "page_now": utc_now().isoformat()})
            check["called"], check["last_end"] = called + 1, ended.isoformat()
            return 1
        complete = self.http.post(f"/api/v1/phone-checks/{check['id']}/complete", headers=auth)
        if complete.status_code == 200:
            present = complete.json()["confirmed_present"]
            outcome = "false_alarm" if present == complete.json()["reached"] else "violation_confirmed"
            note = f"电话抽查 {complete.json()['reached']} 人，{present} 人确认在班"
        else:
            outcome, note = "could_not_verify", "电话抽查接通人数不足 5 人，改日现场核查"
        del self.checks[alert["id"]]
        return self.post(f"{base}/close", auth, {"outcome": outcome, "note": note})

    def inspect(self, base: str, auth: dict[str, str], alert: dict[str, Any]) -> int:
        problem = self.rng.random() < 0.4
        items = {key: {"result": "ok"} for key in CHECKLIST}
        if problem:
            items["headcount"] = {"result": "problem", "note": "在场人数少于当日签到人数"}
        form = {"class_id": str(alert["class_id"]), "alert_id": str(alert["id"]), "kind": "on_site",
                "items": json.dumps(items, ensure_ascii=False), "responsible_name": "现场负责人",
                "findings": "在场人数少于签到人数，疑似代签" if problem else "",
                "headcount_present": str(self.rng.randint(1, 5))}
        filed = self.http.post("/api/v1/inspections", headers=auth, data=form,
                               files={"signature": ("sign.png", signature_png(self.rng), "image/png"),
                                      "inspector_signature": ("mine.png", signature_png(self.rng), "image/png")})
        outcome, note = OUTCOMES[0] if problem else self.rng.choice(OUTCOMES[1:])
        if filed.status_code == 201:
            note += f"（检查表 {filed.json()['id']}）"
        elif outcome == OUTCOMES[0][0]:  # a confirmed violation stands on a filed form: without one, it is not
            outcome, note = OUTCOMES[2]
        return self.post(f"{base}/close", auth, {"outcome": outcome, "note": note})
