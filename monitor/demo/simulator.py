"""The province simulator: registers demo classes over the real API and streams check-ins and snapshots.

Every kind of cheating the verification rules catch with an upload is played within the first two minutes
(`OPENING`), then at random among mostly genuine uploads. Genuine uploads never trip a rule by accident:
every photo the simulator sends is checked against the 64-bit pHash of every photo already stored (this
run's and, in the demo, the kept database's) and regenerated until it is at least `MIN_PHASH_DISTANCE` bits
from all of them (`monitor.demo.photos`), so PHOTO_REPLAY only fires on the deliberate replay.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from models.clock import SHANGHAI
from monitor.demo.photos import PhotoMaker, make_near_copy
from monitor.demo.registration import WorldRegistrar
from monitor.demo.scenarios import (
    CHEAT_WEIGHTS,
    FAR_FIX_COOLDOWN_S,
    OPENING,
    PROXIES_PER_CLASS_PER_DAY,
    Upload,
)
from monitor.demo.world import STRANGER, DemoClass, DemoTrainee, DemoWorld, offset_point

log = logging.getLogger(__name__)


@dataclass
class PreparedCheckin:
    """A check-in made and not sent yet: the form's fields (captured_at as of its making) and the photo."""
    scenario: str
    demo: DemoClass
    trainee: DemoTrainee
    kind: str
    fields: dict[str, str]
    photo: bytes
    day: date


class ProvinceSimulator:
    """Drives the running server through its public API, as training sites across Yunnan would."""

    def __init__(self, base_url: str, admin_token: str, faces_dir: Path, seed: int = 7,
                 http: httpx.Client | None = None, known_phashes: Iterable[str | int] = (),
                 clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.faces_dir = Path(faces_dir)
        self.seed = seed
        self.rng = random.Random(seed)
        self.world = DemoWorld(admin_token=admin_token)
        self.http = http or httpx.Client(base_url=self.base_url, timeout=30)  # uploads
        self.admin_http = http or httpx.Client(base_url=self.base_url, timeout=120)  # registration (own thread)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stats: dict[str, int] = {}
        self.uploads: list[Upload] = []
        self.rounds = 0
        self.registered = threading.Event()  # set once the first class can receive uploads
        self._owed: list[str] = []
        self.photos = PhotoMaker(self.faces_dir, self.rng, known_phashes)
        self.registrar = WorldRegistrar(self.admin_http, self.world, self.faces_dir, self.photos, self.registered)
        # A fix from outside the fence is this far from the venue (metres); the trainee's next fix waits this long,
        # so that it is no impossible speed (GPS_IMPLAUSIBLE counts speed only over more than 1 km).
        self.far_fix_m = (3000.0, 8000.0)
        self.far_fix_cooldown_s = FAR_FIX_COOLDOWN_S
        self.proxies_per_class_per_day = PROXIES_PER_CLASS_PER_DAY

    def remember(self, data: bytes, what: str) -> None:
        """Record the pHash of a photo the server now holds."""
        self.photos.remember(data, what)

    def register(self, n_classes: int = 6, on_class: Callable[[DemoClass], None] | None = None) -> DemoWorld:
        """Register (or find, on a kept database) the occupation, institutions, venues, teachers, trainees with
        their faces and classes, by their natural keys; issue fresh site tokens. Classes become available to
        `step` one by one as they are ready (`on_class` is called for each)."""
        return self.registrar.register(n_classes, self.clock(), on_class)

    # -- uploads -------------------------------------------------------------------------
    def _record(self, upload: Upload, response: httpx.Response) -> Upload:
        try:
            body = response.json()
        except ValueError:
            body = {}
        upload.status = body.get("status", "")
        upload.codes = [r.get("code", "") for r in body.get("reasons") or []]
        upload.status_url = body.get("status_url", "")
        upload.message = body.get("message", "")
        self.uploads.append(upload)
        self.stats[upload.scenario] = self.stats.get(upload.scenario, 0) + 1
        return upload

    def _pick(self, demo: DemoClass, now: datetime, want: Callable[[DemoTrainee], bool] = lambda t: True,
              ) -> DemoTrainee | None:
        ready = [t for t in demo.trainees.values() if t.quiet_until <= now.timestamp() and want(t)]
        return self.rng.choice(ready) if ready else None

    def prepare_checkin(self, demo: DemoClass, scenario: str, now: datetime | None = None) -> PreparedCheckin | None:
        """The photo and form of one check-in of `scenario` (genuine or one kind of cheating), not sent yet; None
        when the class cannot play it now. What the choice itself changes (a far fix's quiet time, a proxy counted
        for the day) is noted here; what depends on the verdict, in `note_verdict`."""
        now = now or self.clock()
        rng = self.rng
        today = now.astimezone(SHANGHAI).date()
        device_of: DemoTrainee | None = None
        mock = False
        far = False
        if scenario == "genuine":  # in the opening, trainees sign in first (a classroom fills up)
            trainee = (self.rounds < len(OPENING) and self._pick(demo, now, lambda t: not t.present)) \
                or self._pick(demo, now)
            photo = self.photos.make_genuine_photo(trainee, reliable=self.rounds < len(OPENING)) if trainee else None
        elif scenario == "wrong_face":  # a stranger's face; not near the obama trainee's (0.69), the others' >= 0.78
            trainee = self._pick(demo, now, lambda t: t.person != "obama") or self._pick(demo, now)
            photo = self.photos.make_selfie(*STRANGER)
        elif scenario == "group":
            trainee = self._pick(demo, now)
            photo = self.photos.make_group_photo()
        elif scenario == "no_face":
            trainee = self._pick(demo, now)
            photo = self.photos.make_faceless_photo()
        elif scenario in ("out_of_fence", "mock_gps"):
            trainee = self._pick(demo, now)
            photo = self.photos.make_genuine_photo(trainee, reliable=True) if trainee else None
            far, mock = scenario == "out_of_fence", scenario == "mock_gps"
        elif scenario == "replay":  # a trainee sends an earlier selfie of his again (re-saved: a new file)
            trainee = self._pick(demo, now, lambda t: bool(t.last_sent))
            photo = make_near_copy(trainee.last_sent) if trainee else None
        elif scenario == "proxy":  # 代签: classmate X signs in for an absent trainee, with X's own face and photo
            if demo.proxies.get(today, 0) >= self.proxies_per_class_per_day or len(demo.trainees) < 2:
                return None
            trainee = self._pick(demo, now, lambda t: not t.present)
            signers = [t for t in demo.trainees.values() if trainee and t.id != trainee.id]
            signer = (next((t for t in signers if t.signed_in_today == today and t.person == "obama"), None)
                      or next((t for t in signers if t.signed_in_today == today), None)
                      or (rng.choice(signers) if signers else None))
            photo = self.photos.make_selfie(signer.person, signer.enrol_photo) if signer else None
            device_of = trainee  # the absent trainee's phone, handed to the classmate
        else:
            raise ValueError(f"unknown scenario {scenario}")
        if trainee is None or photo is None:
            return None
        device = device_of or trainee
        if far:
            bearing, distance = rng.uniform(0, 2 * math.pi), rng.uniform(*self.far_fix_m)
            lat, lon = offset_point(*demo.venue_wgs84, distance * math.cos(bearing), distance * math.sin(bearing))
            trainee.quiet_until = now.timestamp() + self.far_fix_cooldown_s
        else:
            lat, lon = offset_point(*demo.venue_wgs84, rng.uniform(-50, 50), rng.uniform(-50, 50))
        if scenario == "proxy":
            demo.proxies[today] = demo.proxies.get(today, 0) + 1
        kind = "sign_in" if scenario == "proxy" else trainee.next_kind
        fields = {
            "trainee_id": str(trainee.id), "class_id": str(demo.id), "kind": kind,
            "captured_at": now.isoformat(), "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
            "accuracy_m": f"{rng.uniform(8, 40):.1f}", "device_id": f"phone-{demo.id}-{device.id}",
            "mock_location": "true" if mock else "false",
        }
        return PreparedCheckin(scenario, demo, trainee, kind, fields, photo, today)

    def note_verdict(self, prepared: PreparedCheckin, status: str) -> None:
        """What a check-in's verdict (`passed`, …) changes in the trainee's state: present after a passed sign-in;
        a genuine photo is the one a later replay re-sends."""
        trainee = prepared.trainee
        if status == "passed":
            trainee.last_passed_kind = prepared.kind
            if prepared.kind == "sign_in":
                trainee.signed_in_today = prepared.day
        if prepared.scenario == "genuine":
            trainee.last_sent = prepared.photo

    def upload_checkin(self, demo: DemoClass, scenario: str, now: datetime | None = None) -> Upload | None:
        """One check-in of `scenario` (genuine or one kind of cheating); None when the class cannot play it now."""
        prepared = self.prepare_checkin(demo, scenario, now)
        if prepared is None:
            return None
        headers = {"Authorization": f"Bearer {demo.site_token}", "Idempotency-Key": f"sim-{self.seed}-{time.time_ns()}"}
        response = self.http.post("/api/v1/check-ins", data=prepared.fields,
                                  files={"photo": ("p.jpg", prepared.photo, "image/jpeg")}, headers=headers)
        if response.status_code < 300:
            self.remember(prepared.photo, "checkin")
        upload = self._record(Upload(self.rounds, "checkin", scenario, demo.id, prepared.trainee.id,
                                     response.status_code), response)
        self.note_verdict(prepared, upload.status)
        return upload

    def upload_snapshot(self, demo: DemoClass, scenario: str = "snapshot", now: datetime | None = None
                        ) -> Upload | None:
        """A classroom snapshot showing who is present; `headcount_gap` shows one of >= 3 present."""
        now = now or self.clock()
        present = [t for t in demo.trainees.values() if t.present]
        if scenario == "headcount_gap":
            if len(present) < 3:
                return None
            people = [self.rng.choice(present)]
        else:
            # Everyone present is seen (nobody signed in yet: the whole roster, so never fewer than signed in).
            people = present or list(demo.trainees.values())
        photo = self.photos.make_classroom(people)
        if photo is None:
            return None
        response = self.http.post(
            "/api/v1/snapshots",
            data={"class_id": str(demo.id), "camera_id": f"cam-{demo.id}-1", "captured_at": now.isoformat()},
            files={"photo": ("s.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Bearer {demo.site_token}"},
        )
        if response.status_code < 300:
            self.remember(photo, "snapshot")
        return self._record(Upload(self.rounds, "snapshot", scenario, demo.id, None, response.status_code), response)

    def step(self, now: datetime | None = None) -> Upload | None:
        """One round: the opening's scripted scenario, later a random one; every fifth round a snapshot.

        A cheat the classes cannot play yet (a replay needs an earlier selfie, a headcount gap three present)
        is owed and played at the next round of its type; meanwhile the round is a genuine upload.
        """
        now = now or self.clock()
        classes = [c for c in self.world.classes if c.in_session(now)]  # at night the classes are quiet
        if not classes:
            return None
        rng = self.rng
        is_snapshot = self.rounds % 5 == 4
        default = "snapshot" if is_snapshot else "genuine"
        if self.rounds < len(OPENING):
            scenario = OPENING[self.rounds]
            order = classes[:1] + rng.sample(classes[1:], len(classes) - 1)  # the opening plays in class 1
        else:
            scenario = ("headcount_gap" if rng.random() < 0.1 else "snapshot") if is_snapshot else rng.choices(
                list(CHEAT_WEIGHTS), weights=list(CHEAT_WEIGHTS.values()))[0]
            order = rng.sample(classes, len(classes))
        owed = [s for s in self._owed if (s == "headcount_gap") == is_snapshot]
        upload = None
        candidates = list(dict.fromkeys([*owed, scenario, default]))
        for candidate in candidates:
            for demo in order:
                upload = (self.upload_snapshot(demo, candidate, now) if is_snapshot
                          else self.upload_checkin(demo, candidate, now))
                if upload is not None:
                    break
            if upload is not None:
                if candidate in self._owed:
                    self._owed.remove(candidate)
                break
        for candidate in candidates:  # what this round meant to play and did not
            if candidate not in (default, getattr(upload, "scenario", None)) and candidate not in self._owed:
                self._owed.append(candidate)
        self.rounds += 1
        if upload is not None:
            log.info("simulated %s %s -> %s %s", upload.scenario, upload.what, upload.status_code, upload.message)
        return upload

    def settle(self, timeout_s: float = 30.0) -> None:
        """Poll the uploads still pending until the server has judged them (or `timeout_s` passed)."""
        deadline = time.monotonic() + timeout_s
        for upload in self.uploads:
            while upload.status == "pending" and upload.status_url and time.monotonic() < deadline:
                token = next(c.site_token for c in self.world.classes if c.id == upload.class_id)
                body = self.http.get(upload.status_url, headers={"Authorization": f"Bearer {token}"}).json()
                upload.status = body.get("status", "")
                upload.codes = [r.get("code", "") for r in body.get("reasons") or []]
                if upload.status == "pending":
                    time.sleep(0.2)

    def run(self, stop: threading.Event, interval_s: float = 2.0) -> None:
        """Upload until `stop` is set, one round every `interval_s` (starting once a class is registered)."""
        while not self.registered.wait(0.2):
            if stop.is_set():
                return
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                self.step()
            except httpx.ConnectError as exc:  # the center stopping (the demo's Ctrl-C) or not up: no traceback
                log.warning("simulated upload: the center does not answer (%s)", exc)
            except (httpx.HTTPError, ValueError, OSError):
                log.warning("simulated upload failed", exc_info=True)
            next_at = max(next_at + interval_s, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))
