"""Province simulator (issue 21 item 4): a province at a chosen scale, one morning replayed against a cluster.

Usage: .venv/bin/python scripts/simulate_province.py [--quick] [--classes 3000] [--trainees 60] [--verify-sample 1500]
           [--minutes 6] [--cheat-rate wrong_face=0.02,out_of_fence=0.02,mock_gps=0.01,replay=0.01,proxy=0.01,
           group=0.01,no_face=0.01,absent=0.05] [--sample-classes 4] [--api 2] [--workers 2] [--sqlite]
           [--base-url URL --database-url URL]

It starts its own cluster as scripts/bench_load.py does (redis-server, a throwaway PostgreSQL unless --sqlite,
`monitor serve --no-worker --reuse-port` x --api, `monitor worker --no-scheduler` x --workers, each pinned to a
core, and one `monitor scheduler`), or uses a running one (--base-url, with its --database-url).

What is real and what is scaled:
- REAL, through the API and the workers: the sample classes (--sample-classes, at most 4: the demo's classes of
  monitor/demo/world.py, whose 14 trainees are the sample faces' 14 sittings, each enrolled over the API with a
  1:N search) and every check-in of the morning that carries a photo: --verify-sample check-ins, genuine and
  cheating at --cheat-rate, made by the demo simulator (ProvinceSimulator.prepare_checkin, per scenario), sent
  over HTTP at a sign-in peak's arrival curve and verified by the workers' real rules. The photos are made before
  the morning, so that making them does not compete with verification for the two cores.
- REAL, by the cluster's scheduler: the clock rules over the whole province, among them NO_SHOW for every absent
  trainee (--cheat-rate absent=...) and MISSING_SIGNOUT, judged once the morning's session has ended
  (MONITOR_ATTENDANCE_GRACE_MINUTES=0 here, so the run need not wait the production 15 minutes).
- SCALED, a simulator shortcut: the rest of the province (--classes minus the sample: institutions in every
  county, venues within 2 km of their county's seat, two teachers and --trainees trainees per class) is written
  with SQLAlchemy Core in batches, outside the API, the audit chain and the 1:N search; its trainees have no face
  template (the sample faces are only a handful of people: copied templates would make them one another's
  duplicates to DUPLICATE_IDENTITY and the roster's cohort rule). Their sign-ins and sign-outs are written into
  `checkins` as passed rows during the morning, at the same arrival curve, with a placeholder evidence row and no
  photo or verification: they are not judged by the face rules, they exist so that the clock rules, the wall and
  the queries run over a province's rosters. Only the absentees among them are cheats.
- All classes' one session (晨课) is set to the morning's window when the morning starts (classes are registered
  earlier, with a placeholder window).

The report prints, per rule, injected and detected (detected = an anomaly of the rule meant to catch the cheat on
that check-in, or a NO_SHOW on that absent trainee), false alarms on genuine uploads and on present trainees,
throughput and how long the morning took. Every line of the report starts with a fixed label
(tests/test_simulate_province.py reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_load import (  # noqa: E402 - scripts/ is on the path only now
    CORES,
    MONITOR,
    Postgres,
    Processes,
    World,
    load_now,
    make_world,
    start_api,
    start_redis,
    start_workers,
    tree_cpu,
)
from sqlalchemy import insert, select, update  # noqa: E402

from models.clock import SHANGHAI  # noqa: E402
from models.tables import (  # noqa: E402
    Anomaly,
    CheckIn,
    ClassSession,
    Evidence,
    Institution,
    Occupation,
    Region,
    RosterEntry,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
    Verification,
)
from monitor.adapters.storage import Database  # noqa: E402
from monitor.demo.province import (  # noqa: E402
    ABSENT,
    ABSENT_RULE,
    DEFAULT_RATES,
    SIGN_INS_END,
    SIGN_OUTS_END,
    SentCheckin,
    busiest_rate,
    count_cheats,
    draw_arrivals,
    draw_scenarios,
    id_number_of,
    name_of,
    offset_within,
    parse_rates,
    percentile,
    pick_absent,
    plan_province,
    tally_absent,
    tally_cheats,
    tally_genuine,
)
from monitor.demo.simulator import PreparedCheckin, ProvinceSimulator  # noqa: E402
from monitor.demo.world import VENUE_RADIUS_M, DemoClass, demo_phone, offset_point  # noqa: E402

T0 = time.monotonic()
SESSION = "晨课"
CHUNK = 2000  # rows per bulk insert
REPLAY_GAP_S = 15.0  # a replay is sent at least this long after the photo it copies (stored once it is verified)


def say(text: str) -> None:
    print(text, flush=True)


def note(text: str) -> None:
    say(f"  [{time.monotonic() - T0:5.0f} s] {text}")


def chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> list[list[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def insert_returning_ids(db: Database, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in batches; their new ids in the rows' order."""
    ids: list[int] = []
    for part in chunks(rows):
        with db.connection() as conn:
            ids.extend(conn.execute(insert(table).returning(table.id, sort_by_parameter_order=True), part).scalars())
    return ids


def insert_rows(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for part in chunks(rows):
        with db.connection() as conn:
            conn.execute(insert(table), part)


# -- the scaled province (bulk) -------------------------------------------------------------------------------
@dataclass
class ScaledWorld:
    """The classes written in bulk: per class its session, institution, venue and roster."""

    class_ids: list[int] = field(default_factory=list)
    session_of: dict[int, int] = field(default_factory=dict)
    institution_of: dict[int, int] = field(default_factory=dict)
    venue_of: dict[int, tuple[float, float]] = field(default_factory=dict)
    roster: dict[int, list[int]] = field(default_factory=dict)
    counties: int = 0
    prefectures: int = 0
    institutions: int = 0
    seconds: float = 0.0  # how long the writes took


def build_scaled(database_url: str, n_classes: int, roster: int, seed: int, run: str, today: date) -> ScaledWorld:
    """Institutions, venues, teachers, classes with their session, trainees and rosters, written in batches (in a
    process of its own, while the sample's photos are made)."""
    import json

    db = Database(database_url)
    started = time.monotonic()
    try:
        scaled = write_scaled(db, n_classes, roster, seed, run, today, json.loads(
            (REPO / "monitor" / "data" / "yunnan_county_centres.json").read_text())["centres"])
        scaled.seconds = time.monotonic() - started
        return scaled
    finally:
        db.dispose()


def write_scaled(db: Database, n_classes: int, roster: int, seed: int, run: str, today: date,
                 centres: dict[str, tuple[float, float]]) -> ScaledWorld:
    """build_scaled's writes."""
    with db.session() as s:
        counties = {code: (name, parent) for code, name, parent in s.execute(
            select(Region.code, Region.name, Region.parent_code).where(Region.level == "county"))}
    usable = sorted(c for c in counties if c in centres)
    rng = random.Random(seed)
    plan = plan_province(n_classes, roster, usable, rng)
    out = ScaledWorld(counties=len(set(plan.institution_counties)),
                      prefectures=len({counties[c][1] for c in plan.institution_counties}),
                      institutions=len(plan.institution_counties))
    if not n_classes:
        return out
    now = datetime.now(UTC)
    # Until the morning starts (it sets every class's window): in session since 5 minutes ago, as the demo's classes.
    placeholder = max(now.astimezone(SHANGHAI) - timedelta(minutes=5),
                      now.astimezone(SHANGHAI).replace(hour=0, minute=0)).strftime("%H:%M")
    with db.connection() as conn:
        occupation = conn.execute(insert(Occupation).returning(Occupation.id).values(
            code=f"SIM-{run}", name="综合技能（模拟）", has_training_standard=True, has_evaluation_standard=True,
            has_evaluation_body=True)).scalar_one()
    inst_rows = [{"name": f"{counties[c][0]}第{i + 1}职业技能培训学校（模拟）", "licence_no": f"SIM-{run}-{i:05d}",
                  "region_code": c, "blacklisted": False, "blacklist_reason": "", "contact_phone": demo_phone(i),
                  "created_at": now} for i, c in enumerate(plan.institution_counties)]
    inst_ids = insert_returning_ids(db, Institution, inst_rows)
    venue_rows, venue_points = [], []
    for i, c in enumerate(plan.institution_counties):
        north, east = offset_within(rng)
        c_lat, c_lon = centres[c]
        lat, lon = offset_point(c_lat, c_lon, north, east)
        venue_points.append((lat, lon))
        fence = {"shape": "circle", "center": {"lat": lat, "lon": lon}, "radius_m": VENUE_RADIUS_M}
        venue_rows.append({"institution_id": inst_ids[i], "name": f"{inst_rows[i]['name']}教学楼",
                           "address": f"{counties[c][0]}职教路 {i + 1} 号（模拟地址）", "region_code": c,
                           "datum": "WGS-84", "shape": "circle", "center_lat": lat, "center_lon": lon,
                           "radius_m": VENUE_RADIUS_M, "polygon": None,
                           "original": {"datum": "WGS-84", "fence": fence}, "created_at": now})
    venue_ids = insert_returning_ids(db, Venue, venue_rows)
    person = 0
    teacher_rows = []
    for k in plan.classes:
        for role in ("理论", "实操"):
            teacher_rows.append({"id_number": id_number_of(person, plan.institution_counties[k.institution], seed),
                                 "name": name_of(person + 7), "phone": demo_phone(500_000 + person),
                                 "qualifications": [f"{role}教学资格"], "blacklisted": False, "created_at": now})
            person += 1
    teacher_ids = insert_returning_ids(db, Teacher, teacher_rows)
    class_rows = [{"code": f"SIM-{run}-{k.index:05d}", "name": f"综合技能（模拟）第{k.index + 1}期",
                   "institution_id": inst_ids[k.institution], "venue_id": venue_ids[k.institution],
                   "occupation_id": occupation, "mode": "offline", "start_date": today,
                   "end_date": today + timedelta(days=9), "theory_teacher_id": teacher_ids[2 * k.index],
                   "practical_teacher_id": teacher_ids[2 * k.index + 1], "status": "scheduled",
                   "liveness_required": False, "level": None, "created_at": now} for k in plan.classes]
    class_ids = insert_returning_ids(db, TrainingClass, class_rows)
    session_ids = insert_returning_ids(db, ClassSession, [
        {"class_id": c, "name": SESSION, "start_local": placeholder, "end_local": "23:59"} for c in class_ids])
    trainee_rows = []
    for k in plan.classes:
        county = plan.institution_counties[k.institution]
        for _ in range(k.roster):
            trainee_rows.append({"id_number": id_number_of(person, county, seed), "name": name_of(person),
                                 "phone": demo_phone(person), "created_at": now})
            person += 1
    trainee_ids = insert_returning_ids(db, Trainee, trainee_rows)
    roster_rows: list[dict[str, Any]] = []
    at = 0
    for k, class_id in zip(plan.classes, class_ids, strict=True):
        mine = trainee_ids[at:at + k.roster]
        at += k.roster
        out.roster[class_id] = mine
        roster_rows.extend({"class_id": class_id, "trainee_id": t, "category": None, "voucher_no": None}
                           for t in mine)
        out.session_of[class_id] = session_ids[k.index]
        out.institution_of[class_id] = inst_ids[k.institution]
        out.venue_of[class_id] = venue_points[k.institution]
    insert_rows(db, RosterEntry, roster_rows)
    out.class_ids = class_ids
    return out


@dataclass(order=True)
class ScaledMark:
    at_s: float
    class_id: int
    trainee_id: int
    kind: str


def plan_scaled_marks(scaled: ScaledWorld, absent: set[int], span_s: float, rng: random.Random,
                      ) -> list[ScaledMark]:
    """Every present scaled trainee's sign-in (on the peak's curve) and sign-out (after the sign-ins), in order."""
    people = [(c, t) for c in scaled.class_ids for t in scaled.roster[c] if t not in absent]
    ins = draw_arrivals(len(people), SIGN_INS_END * span_s, rng)
    rng.shuffle(people)
    marks = [ScaledMark(at, c, t, "sign_in") for at, (c, t) in zip(ins, people, strict=True)]
    marks += [ScaledMark(rng.uniform(SIGN_INS_END, SIGN_OUTS_END) * span_s, c, t, "sign_out") for c, t in people]
    return sorted(marks)


class ScaledWriter:
    """Writes the scaled trainees' sign-ins and sign-outs as they fall due: passed check-in rows (see the module
    docstring: not verified), each with a placeholder evidence row."""

    def __init__(self, db: Database, scaled: ScaledWorld, marks: list[ScaledMark], run: str) -> None:
        self.db, self.scaled, self.marks, self.run = db, scaled, marks, run
        self.written = 0
        self.busy_s = 0.0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.stretch = 1.0  # the planned times are stretched by this (the morning ends on a whole minute)

    def start(self, begin: float) -> None:
        self.thread = threading.Thread(target=self._loop, args=(begin,), name="scaled-writer", daemon=True)
        self.thread.start()

    def _loop(self, begin: float) -> None:
        try:
            while self.written < len(self.marks) and not self.stop.is_set():
                due = (time.time() - begin) / self.stretch
                end = self.written
                while end < len(self.marks) and self.marks[end].at_s <= due:
                    end += 1
                if end > self.written:
                    started = time.monotonic()
                    self.write(self.marks[self.written:end])
                    self.busy_s += time.monotonic() - started
                    self.written = end
                self.stop.wait(0.5)
        except BaseException as e:  # noqa: BLE001 - reported by the run
            self.error = e

    def write(self, marks: list[ScaledMark]) -> None:
        now = datetime.now(UTC)
        evidence, rows = [], []
        for m in marks:
            sha = hashlib.sha256(f"sim-scaled:{self.run}:{m.class_id}:{m.trainee_id}:{m.kind}".encode()).hexdigest()
            evidence.append({"sha256": sha, "size_bytes": 0, "media_type": "application/x-simulated", "width": 0,
                             "height": 0, "created_at": now})
            lat, lon = self.scaled.venue_of[m.class_id]
            rows.append({"trainee_id": m.trainee_id, "class_id": m.class_id,
                         "institution_id": self.scaled.institution_of[m.class_id],
                         "session_id": self.scaled.session_of[m.class_id], "kind": m.kind, "captured_at": now,
                         "received_at": now, "lat": lat, "lon": lon, "accuracy_m": 15.0,
                         "device_id": f"sim-phone-{m.trainee_id}", "mock_location": False, "photo_sha256": sha,
                         "idempotency_key": None, "status": "passed", "liveness_challenge_id": None})
        for e_part, r_part in zip(chunks(evidence), chunks(rows), strict=True):
            with self.db.connection() as conn:
                conn.execute(insert(Evidence), e_part)
                conn.execute(insert(CheckIn), r_part)

    def join(self, timeout: float) -> None:
        if self.thread:
            self.thread.join(timeout)


# -- the sample: real faces over the API --------------------------------------------------------------------------
@dataclass
class Planned:
    at_s: float
    prepared: PreparedCheckin


def plan_sample(sim: ProvinceSimulator, classes: list[DemoClass], n: int, rates: dict[str, float], span_s: float,
                rng: random.Random) -> tuple[list[Planned], dict[str, int]]:
    """The sample's check-ins, photos made now, in the order and at the times they will be sent; each scenario a
    class cannot play at its turn is played as a genuine check-in instead (counted as not injected)."""
    counts = count_cheats(n, rates)
    scenarios = draw_scenarios(n, counts, rng)
    times = draw_arrivals(n, SIGN_INS_END * span_s, rng)
    base = datetime.now(UTC)
    plan: list[Planned] = []
    genuine_at: dict[int, float] = {}
    skipped: dict[str, int] = defaultdict(int)
    for j, (scenario, at) in enumerate(zip(scenarios, times, strict=True)):
        sim.rounds = j
        now = base + timedelta(seconds=at)
        prepared = None
        for want in dict.fromkeys([scenario, "genuine"]):
            for demo in rng.sample(classes, len(classes)):
                prepared = sim.prepare_checkin(demo, want, now)
                if prepared is not None:
                    break
            if prepared is not None:
                break
            skipped[scenario] += 1
        if prepared is None:
            continue
        if prepared.scenario == "replay":  # sent once the photo it copies has been verified (and its pHash stored)
            at = max(at, genuine_at.get(prepared.trainee.id, at) + REPLAY_GAP_S)
        if prepared.scenario == "genuine":
            genuine_at[prepared.trainee.id] = at
        sim.note_verdict(prepared, "passed" if prepared.scenario == "genuine" else "failed")  # as expected
        sim.remember(prepared.photo, "checkin")
        plan.append(Planned(at, prepared))
    # Everyone present signs out at the end (else MISSING_SIGNOUT).
    end_at = SIGN_INS_END * span_s
    for demo in classes:
        for trainee in demo.trainees.values():
            if trainee.present:
                alone = replace(demo, trainees={trainee.id: trainee})
                now = base + timedelta(seconds=end_at)
                prepared = sim.prepare_checkin(alone, "genuine", now)
                if prepared is None:
                    skipped["sign_out"] += 1
                    continue
                sim.note_verdict(prepared, "passed")
                sim.remember(prepared.photo, "checkin")
                plan.append(Planned(rng.uniform(SIGN_INS_END, SIGN_OUTS_END) * span_s, prepared))
    plan.sort(key=lambda p: p.at_s)
    return plan, dict(skipped)


async def send_sample(base_url: str, plan: list[Planned], begin: float, stretch: float, concurrency: int, run: str,
                      ) -> tuple[list[SentCheckin], dict[int, float], list[float], dict[str, int]]:
    """Send each planned check-in at its time, stretched by `stretch` (open loop); returns what was sent, when,
    the answers' latencies."""
    sent: list[SentCheckin] = []
    started: dict[int, float] = {}
    answers: list[float] = []
    errors: dict[str, int] = defaultdict(int)
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        async def one(k: int, p: Planned) -> None:
            await asyncio.sleep(max(0.0, begin + p.at_s * stretch - time.time()))
            prep = p.prepared
            form = {**prep.fields, "captured_at": datetime.now(UTC).isoformat()}
            async with sem:
                t = time.time()
                try:
                    r = await client.post("/api/v1/check-ins", data=form,
                                          files={"photo": ("selfie.jpg", prep.photo, "image/jpeg")},
                                          headers={"Authorization": f"Bearer {prep.demo.site_token}",
                                                   "Idempotency-Key": f"sim-{run}-{k}"})
                except httpx.HTTPError as e:
                    errors[type(e).__name__] += 1
                    return
            item = SentCheckin(prep.scenario, prep.trainee.id, prep.kind, r.status_code)
            if r.status_code in (200, 201, 202):
                answers.append(time.time() - t)
                item.checkin_id = int(r.json()["id"])
                started[item.checkin_id] = t
            else:
                errors[str(r.status_code)] += 1
            sent.append(item)

        await asyncio.gather(*(one(k, p) for k, p in enumerate(plan)))
    return sent, started, answers, dict(errors)


# -- after the morning: verdicts and the clock, read from the database ----------------------------------------------
def wait_verdicts(db: Database, ids: list[int], deadline: float) -> int:
    """Wait until no check-in of `ids` is pending (or the deadline); returns how many still are."""
    pending = len(ids)
    while time.monotonic() < deadline:
        with db.session() as s:
            pending = sum(1 for (st,) in s.execute(select(CheckIn.status).where(CheckIn.id.in_(ids)))
                          if st == "pending")
        if not pending:
            return 0
        time.sleep(1.0)
    return pending


def read_outcomes(db: Database, sent: list[SentCheckin]) -> dict[int, float]:
    """Fill each sent check-in's status and anomalies; returns when each was verified (epoch seconds)."""
    by_id = {s.checkin_id: s for s in sent if s.checkin_id is not None}
    verified: dict[int, float] = {}
    ids = list(by_id)
    with db.session() as s:
        for part in [ids[i:i + 5000] for i in range(0, len(ids), 5000)]:
            for cid, status in s.execute(select(CheckIn.id, CheckIn.status).where(CheckIn.id.in_(part))):
                by_id[cid].status = status
            for cid, rule in s.execute(select(Anomaly.subject_id, Anomaly.rule).where(
                    Anomaly.subject_kind == "checkin", Anomaly.subject_id.in_(part))):
                by_id[cid].rules.append(rule)
            for cid, at in s.execute(select(Verification.subject_id, Verification.created_at).where(
                    Verification.subject_kind == "checkin", Verification.subject_id.in_(part))):
                verified[cid] = at.timestamp()
    return verified


def clock_findings(db: Database, class_ids: list[int]) -> tuple[dict[str, set[int]], dict[str, float]]:
    """NO_SHOW and MISSING_SIGNOUT on the run's classes: the trainees named, and when the last was raised."""
    found: dict[str, set[int]] = {ABSENT_RULE: set(), "MISSING_SIGNOUT": set()}
    last: dict[str, float] = {}
    with db.session() as s:
        for part in [class_ids[i:i + 5000] for i in range(0, len(class_ids), 5000)]:
            for rule, trainee, at in s.execute(select(Anomaly.rule, Anomaly.trainee_id, Anomaly.created_at).where(
                    Anomaly.rule.in_(list(found)), Anomaly.class_id.in_(part))):
                if trainee is not None:
                    found[rule].add(trainee)
                last[rule] = max(last.get(rule, 0.0), at.timestamp())
    return found, last


def wait_clock(db: Database, class_ids: list[int], judged_after: float, expected: int, deadline: float,
               settle_s: float) -> tuple[dict[str, set[int]], dict[str, float], float]:
    """Wait, past `judged_after` (epoch), for the clock's NO_SHOW: until `expected` are raised, or the count has
    not moved for `settle_s` after the first, or the deadline. Returns the findings and when the wait ended."""
    seen, moved = -1, time.monotonic()
    while True:
        found, last = clock_findings(db, class_ids)
        n = len(found[ABSENT_RULE])
        if n != seen:
            seen, moved = n, time.monotonic()
        if time.time() > judged_after and (n >= expected or (n and time.monotonic() - moved >= settle_s)):
            return found, last, time.time()
        if time.monotonic() > deadline:
            return found, last, time.time()
        time.sleep(2.0)


def set_morning(db: Database, class_ids: list[int], start: str, end: str) -> None:
    with db.connection() as conn:
        for part in [class_ids[i:i + 5000] for i in range(0, len(class_ids), 5000)]:
            conn.execute(update(ClassSession).where(ClassSession.class_id.in_(part))
                         .values(start_local=start, end_local=end))


def time_queries(base_url: str, token: str, class_id: int | None) -> str:
    """How long the wall's and the reports' reads take on the province as it stands after the morning."""
    paths = ["/api/v1/overview", "/api/v1/reports/daily", "/api/v1/alerts?limit=50", "/api/v1/anomalies?limit=100"]
    if class_id is not None:
        paths.append(f"/api/v1/classes/{class_id}/ledger")
    out = []
    with httpx.Client(base_url=base_url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as client:
        for path in paths:
            t = time.monotonic()
            try:
                code = str(client.get(path).status_code)
            except httpx.HTTPError as e:
                code = type(e).__name__
            out.append(f"{path.split('?')[0].removeprefix('/api/v1/')} {(time.monotonic() - t) * 1000:.0f} ms ({code})")
    return ", ".join(out)


# -- the run ----------------------------------------------------------------------------------------------------
def main() -> None:  # noqa: PLR0915 - one phase after another
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small province and a short morning (about 2 min)")
    parser.add_argument("--classes", type=int, help="classes in the province, the sample's included (3000; quick 40)")
    parser.add_argument("--trainees", type=int, help="trainees per scaled class (60; quick 20)")
    parser.add_argument("--verify-sample", type=int, help="check-ins with a photo sent and verified (1500; quick 90)")
    parser.add_argument("--minutes", type=float, help="the morning's session, at least, in minutes (6; quick 0.5): "
                        "it ends on the first whole minute after")
    parser.add_argument("--cheat-rate", default=",".join(f"{k}={v}" for k, v in DEFAULT_RATES.items()),
                        help="cheat=rate,…: check-in cheats per verified check-in, absent per rostered trainee")
    parser.add_argument("--sample-classes", type=int, default=4, choices=range(2, 5),
                        help="the demo's real-face classes (5+3+3+3 trainees at 4)")
    parser.add_argument("--api", type=int, default=2, help="API processes (own cluster)")
    parser.add_argument("--workers", type=int, default=2, help="verification workers (own cluster)")
    parser.add_argument("--sqlite", action="store_true", help="own cluster on SQLite instead of PostgreSQL")
    parser.add_argument("--base-url", help="a running cluster instead of one started here")
    parser.add_argument("--database-url", help="its database (SQLAlchemy URL), required with --base-url")
    parser.add_argument("--concurrency", type=int, default=32, help="uploads in flight at most")
    parser.add_argument("--clock-wait", type=float, default=240.0, help="most seconds to wait for the clock rules "
                        "after the session's end")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("MONITOR_FACES_DIR",
                                                                          REPO.parent / "shared" / "faces")))
    args = parser.parse_args()
    quick = args.quick
    n_classes = args.classes if args.classes is not None else (40 if quick else 3000)
    roster = args.trainees or (20 if quick else 60)
    n_verify = args.verify_sample or (90 if quick else 1500)
    minutes = args.minutes or (0.5 if quick else 6.0)
    rates = {**{k: 0.0 for k in DEFAULT_RATES}, **parse_rates(args.cheat_rate)}
    if args.base_url and not args.database_url:
        sys.exit("--base-url needs --database-url (the scaled province is written into the database)")
    if n_classes < args.sample_classes:
        sys.exit(f"--classes must be at least --sample-classes ({args.sample_classes})")
    run = f"{args.seed}-{uuid.uuid4().hex[:6]}"
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="simulate-province-"))
    (root / "logs").mkdir()
    procs = Processes(root / "logs")
    pg: Postgres | None = None
    span_s = minutes * 60
    say(f"simulate_province: {n_classes} classes ({args.sample_classes} with real faces), {roster} trainees per "
        f"scaled class, {n_verify} verified check-ins over a {minutes:g}-minute morning; seed {args.seed}; "
        f"{len(CORES)} cores; {load_now()}")
    try:
        # 0. the cluster
        grace_min = 0
        roles: dict[str, list[Any]] = {}
        if args.base_url:
            from models.domain import Role
            from monitor.adapters.tokens import issue_token

            database_url = args.database_url
            db = Database(database_url)
            with db.session() as s:
                admin, operator = issue_token(s, Role.ADMIN, "模拟管理员"), issue_token(s, Role.OPERATOR, "模拟值班员")
            world = World("external", {}, database_url, admin, operator)
            base_url = args.base_url.rstrip("/")
            grace_min = int(os.environ.get("MONITOR_ATTENDANCE_GRACE_MINUTES", "15"))
            say(f"CLUSTER: external {base_url}; database {database_url.split('@')[-1]}")
        else:
            redis_url = start_redis(procs, root)
            if not args.sqlite:
                pg = Postgres.start()
            database_url = pg.create("province") if pg else ""
            world = make_world("province", root, redis_url + "/0", args.faces, database_url, {
                "MONITOR_ATTENDANCE_GRACE_MINUTES": str(grace_min),
                "MONITOR_CLOCK_INTERVAL_SECONDS": "5" if quick else "15",
                "MONITOR_FACE_PROCESSES": "1", "MONITOR_DISPATCH_INTERVAL_SECONDS": "10"})
            start_api(procs, world, args.api, CORES)
            workers = start_workers(procs, world, [CORES[(len(CORES) - 1 - j) % len(CORES)]
                                                   for j in range(args.workers)])
            roles = {"API": world.api, "workers": workers,
                     "scheduler": [procs.start("scheduler", [str(MONITOR), "scheduler"], world.env)]}
            base_url = world.base
            db = Database(world.database_url)
            say(f"CLUSTER: {args.api} API process(es) on port {world.port}, {len(workers)} worker(s), 1 scheduler, "
                f"{'PostgreSQL' if pg else 'SQLite'}, Redis; roles pinned to cores as scripts/bench_load.py does; "
                f"clock every {world.env['MONITOR_CLOCK_INTERVAL_SECONDS']} s, "
                f"attendance judged at the session's end (grace {grace_min} min)")

        # 1. the sample, over the API
        started = time.monotonic()
        sim = ProvinceSimulator(base_url, world.admin, args.faces, seed=args.seed)
        sim.far_fix_m = (300.0, 900.0)  # under 1 km: no pause needed before the next fix (14 people only)
        sim.far_fix_cooldown_s = 0.0
        sim.proxies_per_class_per_day = 10**6
        demo = sim.register(args.sample_classes)
        sample_ids = [c.id for c in demo.classes]
        sample_trainees = [t for c in demo.classes for t in c.trainees.values()]
        sample_absent = {sample_trainees[i].id for i in pick_absent(len(sample_trainees), rates[ABSENT], rng)}
        if rates[ABSENT] > 0 and not sample_absent:
            sample_absent = {rng.choice(sample_trainees).id}
        for t in sample_trainees:
            if t.id in sample_absent:
                t.quiet_until = math.inf  # never picked: sends nothing all morning
        note(f"sample registered over the API in {time.monotonic() - started:.0f} s: classes {sample_ids}, "
             f"{len(sample_trainees)} trainees enrolled ({len(sample_absent)} to be absent)")

        # 2. the scaled province, in bulk (a process of its own), while 3. the sample's photos are made here
        started = time.monotonic()
        today = datetime.now(SHANGHAI).date()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            building = pool.submit(build_scaled, world.database_url, n_classes - args.sample_classes, roster,
                                   args.seed, run, today)
            plan, skipped = plan_sample(sim, demo.classes, n_verify, rates, span_s, rng)
            note(f"{len(plan)} check-ins made in {time.monotonic() - started:.0f} s (cheats that no class could "
                 f"play at their turn, sent genuine instead: {skipped or 'none'})")
            scaled = building.result()
        build_s = scaled.seconds
        all_scaled = [t for c in scaled.class_ids for t in scaled.roster[c]]
        scaled_absent = {all_scaled[i] for i in pick_absent(len(all_scaled), rates[ABSENT], rng)}
        marks = plan_scaled_marks(scaled, scaled_absent, span_s, rng)
        note(f"scaled province written in {build_s:.0f} s (alongside the photos; both done at "
             f"{time.monotonic() - started:.0f} s): {len(scaled.class_ids)} classes, "
             f"{len(all_scaled)} trainees ({len(scaled_absent)} to be absent); {len(marks)} scaled sign-ins and "
             f"sign-outs planned")
        say(f"PROVINCE: {n_classes} classes, {len(all_scaled) + len(sample_trainees)} trainees; {args.sample_classes} "
            f"real-face classes ({len(sample_trainees)} trainees, over the API), {len(scaled.class_ids)} scaled "
            f"classes ({len(all_scaled)} trainees, {scaled.institutions} institutions in {scaled.counties} counties "
            f"of {scaled.prefectures} prefectures, written in bulk in {build_s:.0f} s)")

        # 4. the morning: from now until the first whole minute at least --minutes away (the session's end), the
        # planned times stretched to fill it
        now_local = datetime.now(SHANGHAI)
        start_local = now_local.replace(second=0, microsecond=0)
        end_local = start_local + timedelta(minutes=math.ceil((now_local - start_local).total_seconds() / 60
                                                              + minutes))
        if end_local.date() != start_local.date():
            sys.exit("the morning would cross midnight (Asia/Shanghai); run it a few minutes later")
        set_morning(db, sample_ids + scaled.class_ids, f"{start_local:%H:%M}", f"{end_local:%H:%M}")
        cpu0 = {name: sum(tree_cpu(p.pid) for p in ps) for name, ps in roles.items()}
        begin = time.time()
        stretch = max(1.0, (end_local.timestamp() - begin) / span_s)
        writer = ScaledWriter(db, scaled, marks, run)
        writer.stretch = stretch
        writer.start(begin)
        say(f"MORNING: session {SESSION} {start_local:%H:%M}–{end_local:%H:%M} (Asia/Shanghai) for every class; "
            f"{len(plan)} check-ins with photos and {len(marks)} scaled rows over {span_s * stretch / 60:.1f} min; "
            f"{load_now()}")
        sent, sent_at, answers, errors = asyncio.run(send_sample(base_url, plan, begin, stretch, args.concurrency, run))
        sends_done = time.time()
        ids = [s.checkin_id for s in sent if s.checkin_id is not None]
        still = wait_verdicts(db, ids, time.monotonic() + max(120.0, span_s))
        writer.join(max(5.0, begin + SIGN_OUTS_END * span_s * stretch - time.time() + 60))
        if writer.error:
            raise writer.error
        verdicts_done = time.time()
        cpu = {name: sum(tree_cpu(p.pid) for p in ps) - cpu0[name] for name, ps in roles.items()}
        note(f"sent {len(sent)} ({len(ids)} accepted, errors {errors or 'none'}); {still} still pending; "
             f"{writer.written} scaled rows written (writer busy {writer.busy_s:.0f} s); {load_now()}")

        # 5. the clock
        end_epoch = end_local.timestamp() + 60 * grace_min
        note(f"waiting for the session's end ({max(0.0, end_epoch - time.time()):.0f} s) and the clock's NO_SHOW")
        found, last, clock_done = wait_clock(
            db, sample_ids + scaled.class_ids, end_epoch, len(sample_absent) + len(scaled_absent),
            time.monotonic() + max(0.0, end_epoch - time.time()) + args.clock_wait, settle_s=30.0)

        # 6. the report
        verified = read_outcomes(db, sent)
        say("")
        say(f"REPORT ({n_classes} classes; {load_now()})")
        for line in tally_cheats(sent):
            say(f"RULE {line.cheat} -> {line.rule}: injected {line.injected}, detected {line.detected} "
                f"({line.rate:.0%}); verdicts {dict(sorted(line.outcome.items()))}"
                + (f"; the missed raised {line.missed_rules}" if line.missed_rules else ""))
        present_sample = {s.trainee_id for s in sent if s.scenario == "genuine" and s.status in ("passed", "review")
                          and s.kind == "sign_in"}
        present_scaled = set(all_scaled) - scaled_absent
        a_all = tally_absent(sample_absent | scaled_absent, present_sample | present_scaled, found[ABSENT_RULE],
                             found["MISSING_SIGNOUT"])
        a_sample = tally_absent(sample_absent, present_sample, found[ABSENT_RULE], found["MISSING_SIGNOUT"])
        after_end = (f"; the last raised {last[ABSENT_RULE] - end_epoch:.0f} s after the session's end"
                     if ABSENT_RULE in last else "")
        say(f"RULE absent -> {ABSENT_RULE}: injected {a_all.injected}, detected {a_all.detected} "
            f"({a_all.detected / max(1, a_all.injected):.0%}); real-face sample {a_sample.detected} of "
            f"{a_sample.injected}, scaled {a_all.detected - a_sample.detected} of "
            f"{a_all.injected - a_sample.injected}{after_end}")
        g = tally_genuine(sent)
        say(f"FALSE ALARMS ON GENUINE UPLOADS: {g.false_alarms} of {g.sent} ({g.false_alarms / max(1, g.sent):.1%}) "
            f"{g.by_rule or ''}; verdicts {dict(sorted(g.statuses.items()))}")
        say(f"FALSE ALARMS ON PRESENT TRAINEES: {ABSENT_RULE} {a_all.false_no_show}, MISSING_SIGNOUT "
            f"{a_all.missing_signout} of {a_all.present} who signed in and out (sample {a_sample.present}, "
            f"scaled {a_all.present - a_sample.present})")
        done = sorted(verified[i] for i in ids if i in verified)
        lat = [verified[i] - sent_at[i] for i in ids if i in verified]
        span = (done[-1] - begin) if done else float("nan")
        say(f"THROUGHPUT: {len(done)} check-ins verified in {span:.0f} s from the first upload "
            f"({len(done) / span if done else 0:.1f}/s overall, {busiest_rate(done, 30):.1f}/s in the busiest "
            f"30 s); offered at the peak {busiest_rate([begin + p.at_s * stretch for p in plan], 30):.1f}/s; "
            f"upload answer p50 {percentile(answers, 50) * 1000:.0f} ms, p99 {percentile(answers, 99) * 1000:.0f} ms; "
            f"upload -> verdict p50 {percentile(lat, 50):.1f} s, p95 {percentile(lat, 95):.1f} s, "
            f"p99 {percentile(lat, 99):.1f} s")
        say(f"SCALED ROWS: {writer.written} sign-ins and sign-outs written as passed check-ins "
            f"({writer.written / max(1e-9, SIGN_OUTS_END * span_s * stretch):.0f}/s over the morning, writer busy "
            f"{writer.busy_s:.0f} s)")
        say(f"MORNING TOOK: uploads {sends_done - begin:.0f} s, until the last verdict {verdicts_done - begin:.0f} s "
            f"({still} never judged); session end {end_epoch - begin:.0f} s; clock's NO_SHOW complete "
            f"{clock_done - begin:.0f} s after the first upload; whole run {time.monotonic() - T0:.0f} s")
        say("QUERIES AFTER THE MORNING: " + time_queries(
            base_url, world.admin, scaled.class_ids[0] if scaled.class_ids else None))
        if cpu:
            wall = verdicts_done - begin
            say("CPU DURING THE MORNING: " + ", ".join(f"{name} {c / wall * 100:.0f} %" for name, c in cpu.items())
                + f" of one core (over {wall:.0f} s until the last verdict; 2 cores in all)")
    finally:
        procs.stop_all()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
