"""Registering the demo's world over the API by natural keys: occupation, institutions, venues, people, classes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from models.clock import SHANGHAI
from monitor.decisions.geodesy import convert_from_wgs84
from monitor.demo.photos import PhotoMaker
from monitor.demo.world import (
    CLASS_DAYS,
    OCCUPATION,
    SESSION_NAME,
    SITES,
    VENUE_RADIUS_M,
    DemoClass,
    DemoTrainee,
    DemoWorld,
    demo_phone,
    make_id_number,
    roster_plan,
)


class WorldRegistrar:
    """Registers (or finds, on a kept database) the demo's records as the administrator, one class at a time."""

    def __init__(self, http: httpx.Client, world: DemoWorld, faces_dir: Path, photos: PhotoMaker,
                 registered: threading.Event) -> None:
        self.http = http
        self.world = world
        self.faces_dir = faces_dir
        self.photos = photos
        self.registered = registered  # set once the first class can receive uploads

    def _request(self, method: str, path: str, token: str, ok: tuple[int, ...] = (200, 201),
                 **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} -> {response.status_code} {response.text}")
        return response

    def _post(self, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request("POST", path, token, **kwargs).json()
        return body

    def _get(self, path: str) -> Any:
        return self._request("GET", path, self.world.admin_token).json()

    def _create_person(self, kind: str, county: str, birth: date, seq: int, body: dict[str, Any]) -> int:
        """Create a trainee or teacher, or find him by his natural key (ID number and name): an interrupted earlier
        run may have registered him without this run seeing it (no class yet names him). The 409 for a taken ID
        number names its holder; only a holder of another name makes the person take the next sequence."""
        for attempt in range(20):
            body["id_number"] = make_id_number(county, birth, seq + 37 * attempt)
            response = self._request("POST", f"/api/v1/{kind}", self.world.admin_token, ok=(201, 409), json=body)
            if response.status_code == 201:
                created: int = response.json()["id"]
                return created
            other = ((response.json().get("detail") or {}).get("other")) or {}
            if other.get("id") and other.get("name") == body["name"]:
                return int(other["id"])
        raise RuntimeError(f"no free ID number for {body['name']}")

    def _enrol(self, trainee_id: int, person: str, photo: str) -> int:
        """Enrol the trainee's face unless he has one; returns the trainee who holds this face.

        If the face is already enrolled for another trainee (a record left by an interrupted earlier run),
        the server refuses it (409 DUPLICATE_IDENTITY) and names that trainee: he is the one to use.
        """
        if self._get(f"/api/v1/trainees/{trainee_id}")["face_templates"]:
            return trainee_id
        data = (self.faces_dir / "people" / person / photo).read_bytes()
        media = "image/png" if photo.endswith(".png") else "image/jpeg"
        response = self._request("POST", f"/api/v1/trainees/{trainee_id}/faces", self.world.admin_token,
                                 ok=(201, 409), files=[("photos", (photo, data, media))])
        if response.status_code == 409:
            body = response.json()
            other = (body.get("detail") or {}).get("other") or body.get("other") or {}
            if other.get("kind") == "trainee" and other.get("id"):
                return int(other["id"])
            raise RuntimeError(f"enrolment of {person}/{photo} refused: {response.text}")
        return trainee_id

    def register(self, n_classes: int, now: datetime, on_class: Callable[[DemoClass], None] | None = None,
                 ) -> DemoWorld:
        """Register (or find, on a kept database) the occupation, institutions, venues, teachers, trainees with
        their faces and classes, by their natural keys; issue fresh site tokens. Each class joins the world as
        soon as it is ready (`on_class` is called for each)."""
        admin = self.world.admin_token
        local_now = now.astimezone(SHANGHAI)
        today = local_now.date()
        session_start = max(local_now - timedelta(minutes=5), local_now.replace(hour=0, minute=0)).strftime("%H:%M")
        occupation = next((o for o in self._get("/api/v1/occupations") if o["code"] == OCCUPATION["code"]), None) \
            or self._post("/api/v1/occupations", admin, json=OCCUPATION)
        if not self.world.operator_token:
            self.world.operator_token = self._post(
                "/api/v1/tokens", admin, json={"role": "operator", "name": "省监控调度中心值班员"})["token"]
        if not self.world.inspector_token:
            self.world.inspector_token = self._post("/api/v1/tokens", admin, json={
                "role": "inspector", "name": "昆明市抽查员", "region_codes": ["530100"]})["token"]
        institutions = {i["licence_no"]: i for i in self._get("/api/v1/institutions")}
        venues = self._get("/api/v1/venues")
        all_classes = self._get("/api/v1/classes")
        for index, sittings in enumerate(roster_plan(n_classes)):
            county, (lat, lon), class_name, inst_name, datum = SITES[index]
            licence = f"YN-DEMO-{county}-{index}"
            inst = institutions.get(licence) or self._post("/api/v1/institutions", admin, json={
                "name": inst_name, "licence_no": licence, "region_code": county,
                "contact_phone": demo_phone(9000 + index)})
            venue = next((v for v in venues if v["institution_id"] == inst["id"] and v["name"] == f"{inst_name}教学楼"),
                         None)
            if venue is None:
                c_lat, c_lon = convert_from_wgs84(lat, lon, datum)
                venue = self._post("/api/v1/venues", admin, json={
                    "institution_id": inst["id"], "name": f"{inst_name}教学楼", "region_code": county,
                    "address": f"{inst_name}职教路 {10 + index} 号（演示地址）",
                    "datum": datum.value,
                    "fence": {"shape": "circle", "center": {"lat": c_lat, "lon": c_lon}, "radius_m": VENUE_RADIUS_M},
                })
            mine = [c for c in all_classes if c["institution_id"] == inst["id"]]  # newest first
            current = next((c for c in mine if c["start_date"] <= today.isoformat() <= c["end_date"]), None)
            earlier = current or (mine[0] if mine else None)
            # The people of an earlier class of this institution are this class's people (natural key: the name).
            known: dict[str, int] = {}
            if earlier:
                for trainee_id in earlier["trainee_ids"]:
                    known[self._get(f"/api/v1/trainees/{trainee_id}")["name"]] = trainee_id
            trainees: dict[int, DemoTrainee] = {}
            for k, (person, photo, name) in enumerate(sittings):
                trainee_id = known.get(name) or self._create_person(
                    "trainees", county, date(1990, 1, 1) + timedelta(days=131 * (10 * index + k)),
                    100 + 10 * index + k, {"name": name, "phone": demo_phone(10 * index + k)})
                trainee_id = self._enrol(trainee_id, person, photo)
                self.photos.remember((self.faces_dir / "people" / person / photo).read_bytes(), "enrolment")
                trainees[trainee_id] = DemoTrainee(trainee_id, person, photo, name)
            if current is None:
                if earlier:
                    teachers = [earlier["theory_teacher_id"], earlier["practical_teacher_id"]]
                else:
                    teachers = [self._create_person(
                        "teachers", county, date(1980, 1, 1) + timedelta(days=97 * (2 * index + k)), 2 * index + k,
                        {"name": f"{role}教师{2 * index + k + 1:02d}", "qualifications": [f"{role}教学资格"]})
                        for k, role in enumerate(("理论", "实操"))]
                current = self._post("/api/v1/classes", admin, json={
                    "code": f"YN{today:%Y%m%d}{index + 1:03d}", "name": class_name, "institution_id": inst["id"],
                    "venue_id": venue["id"], "occupation_id": occupation["id"], "mode": "offline",
                    "start_date": today.isoformat(), "end_date": (today + timedelta(days=CLASS_DAYS - 1)).isoformat(),
                    "theory_teacher_id": teachers[0], "practical_teacher_id": teachers[1],
                    "sessions": [{"name": SESSION_NAME, "start": session_start, "end": "23:59"}],
                    "trainee_ids": list(trainees),
                })
            elif missing := [t for t in trainees if t not in current["trainee_ids"]]:
                self._post(f"/api/v1/classes/{current['id']}/roster", admin, json={"trainee_ids": missing})
            site_token = self._post("/api/v1/tokens", admin, json={
                "role": "site", "name": f"{inst_name}签到终端", "institution_id": inst["id"]})["token"]
            demo = DemoClass(current["id"], site_token, (lat, lon), trainees, index,
                             [(w["start"], w["end"]) for w in current["sessions"]])
            self.world.classes.append(demo)
            self.registered.set()
            if on_class:
                on_class(demo)
        return self.world
