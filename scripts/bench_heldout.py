"""Held-out faces through the API, as the province's testers run them: a labelled folder becomes one class.

Usage: .venv/bin/python scripts/bench_heldout.py FOLDER [--model NAME] [--processes 0]

FOLDER holds one sub-folder per person (photos as phones send them). In a fresh center (a temporary data
directory, the app on its embedded defaults with MONITOR_FACE_MODEL=NAME), every person with at least two photos
is registered as a trainee of one class and enrolled with their first photo (POST .../faces; a refusal, e.g. a
look-alike refused as DUPLICATE_IDENTITY, is reported). Then, through POST /api/v1/check-ins with the site's
token, each person signs in with every other photo (genuine), and, in a second center with the same
enrolments, each of those photos is sent for the next person of the class (a classmate proxy). The verdicts
are tallied: passed / review / refused, and whether the face rules refused them (PROXY_SIGNIN or
FACE_MISMATCH) rather than another rule (a folder's photos may be copies of one frame: PHOTO_REPLAY).
Nothing but the API is used to judge.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.clock import SHANGHAI  # noqa: E402
from models.domain import Role  # noqa: E402
from monitor.adapters.tokens import issue_token  # noqa: E402
from monitor.app import create_app  # noqa: E402
from monitor.demo.world import make_id_number, offset_point  # noqa: E402
from monitor.settings import Settings  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
VENUE = (25.0433, 102.7058)  # Wuhua district, Kunming (WGS-84)
FACE_RULES = {"PROXY_SIGNIN", "FACE_MISMATCH"}


def people_of(folder: Path) -> dict[str, list[Path]]:
    found = {p.name: sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES)
             for p in sorted(folder.iterdir()) if p.is_dir()}
    return {name: files for name, files in found.items() if len(files) >= 2}


class Center:
    """A fresh center with one class of the folder's people, driven through its API."""

    def __init__(self, data_dir: Path, model: str, processes: int, people: dict[str, list[Path]]) -> None:
        settings = Settings(data_dir=data_dir, face_model=model, face_processes=processes, clock_rules=False,
                            dispatch_auto=False, draw_auto=False, verdict_wait_seconds=60)
        self.client = TestClient(create_app(settings))
        self.client.__enter__()
        with self.client.app.state.db.session() as session:
            self.admin = issue_token(session, Role.ADMIN, "测试管理员")
        occupation = self.post("/api/v1/occupations", json={"code": "4-03-02-01", "name": "中式烹调师"})
        inst = self.post("/api/v1/institutions", json={"name": "留出测试学校", "licence_no": "HELD-1",
                                                        "region_code": "530102"})
        venue = self.post("/api/v1/venues", json={
            "institution_id": inst["id"], "name": "留出测试教学楼", "region_code": "530102",
            "fence": {"shape": "circle", "center": {"lat": VENUE[0], "lon": VENUE[1]}, "radius_m": 200}})
        teachers = [self.post("/api/v1/teachers", json={"id_number": make_id_number("530102", date(1980, 5, k), k),
                                                        "name": f"教师{k}"})["id"] for k in (1, 2)]
        self.trainees: dict[str, int] = {}
        self.refused: dict[str, str] = {}
        for k, (name, photos) in enumerate(people.items()):
            t = self.post("/api/v1/trainees", json={"id_number": make_id_number("530102", date(1990, 1, 1) +
                                                                                timedelta(days=k), 1000 + k),
                                                    "name": f"学员{k + 1}"})
            r = self.client.post(f"/api/v1/trainees/{t['id']}/faces", headers=self.auth(self.admin),
                                 files=[("photos", (photos[0].name, photos[0].read_bytes(), "image/jpeg"))])
            if r.status_code == 201:
                self.trainees[name] = t["id"]
            else:
                self.refused[name] = f"{r.status_code} {r.json().get('code')}"
        today = datetime.now(UTC).astimezone(SHANGHAI).date()
        cls = self.post("/api/v1/classes", json={
            "code": "HELD-OUT", "name": "留出测试班", "institution_id": inst["id"], "venue_id": venue["id"],
            "occupation_id": occupation["id"], "start_date": (today - timedelta(days=1)).isoformat(),
            "end_date": (today + timedelta(days=1)).isoformat(), "theory_teacher_id": teachers[0],
            "practical_teacher_id": teachers[1], "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}],
            "trainee_ids": list(self.trainees.values())})
        self.class_id = cls["id"]
        self.site = self.post("/api/v1/tokens", json={"role": "site", "name": "站点",
                                                      "institution_id": inst["id"]})["token"]

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.client.post(path, headers=self.auth(self.admin), **kwargs)
        if r.status_code != 201:
            raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def sign_in(self, photo: Path, trainee: str, device: str, rng: random.Random) -> dict[str, Any]:
        lat, lon = offset_point(*VENUE, rng.uniform(-60, 60), rng.uniform(-60, 60))
        form = {"trainee_id": str(self.trainees[trainee]), "class_id": str(self.class_id), "kind": "sign_in",
                "captured_at": datetime.now(UTC).isoformat(), "latitude": str(lat), "longitude": str(lon),
                "accuracy_m": "15", "device_id": device, "mock_location": "false"}
        r = self.client.post("/api/v1/check-ins", data=form, headers=self.auth(self.site),
                             files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")})
        return r.json() | {"http": r.status_code}

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def outcome(verdict: dict[str, Any]) -> str:
    if verdict["http"] >= 400:
        return f"http {verdict['http']} {verdict.get('code')}"
    return {"passed": "passed", "review": "review", "failed": "refused"}.get(verdict["status"], verdict["status"])


def main(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="one sub-folder per person")],
    model: Annotated[str, typer.Option(help="face model manifest")] = "faceplugin-arcface",
    processes: Annotated[int, typer.Option(help="face processes (0: in this process)")] = 0,
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    """Print passed / review / refused for genuine sign-ins and classmate proxies, through the API."""
    people = people_of(folder)
    if len(people) < 2:
        raise typer.BadParameter("need at least two people with two photos each")
    rng = random.Random(seed)
    reasons: Counter[str] = Counter()

    def run(center: Center, label: str, victim_of: dict[str, str]) -> tuple[Counter[str], int]:
        """Each person's photos but the enrolled one, signed in for `victim_of[person]`: outcomes, face refusals."""
        outcomes: Counter[str] = Counter()
        by_face = 0
        for name, victim in victim_of.items():
            for photo in people[name][1:]:
                v = center.sign_in(photo, victim, f"phone-{victim}", rng)
                outcomes[outcome(v)] += 1
                codes = {r["code"] for r in v.get("reasons", [])}
                by_face += bool(codes & FACE_RULES)
                reasons.update(f"{label} {c}" for c in codes)
        center.close()
        return outcomes, by_face

    with tempfile.TemporaryDirectory(prefix="heldout-") as tmp:
        center = Center(Path(tmp) / "genuine", model, processes, people)
        enrolled = [n for n in people if n in center.trainees]
        refused_at_enrolment = dict(center.refused)
        genuine, genuine_face_refusals = run(center, "genuine", {n: n for n in enrolled})
        proxies, outright = run(Center(Path(tmp) / "proxies", model, processes, people), "proxy",
                                {n: enrolled[(i + 1) % len(enrolled)] for i, n in enumerate(enrolled)})

    def line(counter: Counter[str]) -> str:
        n = sum(counter.values())
        return " / ".join(f"{counter[k]}" for k in ("passed", "review", "refused")) + f" of {n}" + (
            f" (other: {dict((k, v) for k, v in counter.items() if k not in ('passed', 'review', 'refused'))})"
            if set(counter) - {"passed", "review", "refused"} else "")

    typer.echo(f"{folder}: {len(people)} people with two or more photos, {len(enrolled)} enrolled with {model}"
               + (f"; refused at enrolment: {refused_at_enrolment}" if refused_at_enrolment else ""))
    typer.echo(f"genuine sign-ins   passed / review / refused: {line(genuine)}; refused by the face rules: "
               f"{genuine_face_refusals} (other refusals are the photos' own: a re-used frame, an old EXIF time)")
    typer.echo(f"classmate proxies  passed / review / refused: {line(proxies)}; refused by the face rules "
               f"(PROXY_SIGNIN or FACE_MISMATCH): {outright}")
    typer.echo(f"reasons: {dict(sorted(reasons.items()))}")


if __name__ == "__main__":
    typer.run(main)
