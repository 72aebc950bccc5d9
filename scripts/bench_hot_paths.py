"""Hot paths at province size (issue 21 item 6): templates, the replay index, the public notice and the clock rules.

Usage: .venv/bin/python scripts/bench_hot_paths.py [--classes 3000] [--trainees 60] [--days 3] [--code DIR]
                                                   [--database-url URL] [--skip-notice]

Seeds a database directly through the project's tables (once: kept under var/bench_hot_paths/ and copied for each
run, so every run starts from the same rows): `--classes` offline classes running today, each with two sessions
(08:30-11:30, 14:00-17:00), `--trainees` trainees (one face template each, of the default face model; 1 % of them
also on a second class at the same times) and two teachers (two templates each), `--days` days of check-ins
(sign-in and sign-out per session, 3 % absent, 1 % without sign-out, all passed, each with its photo, verification
and pHash; today's sign-ins carry their face encodings, as verified ones do), three classroom snapshots per session
today with the teachers they showed. Then it times, on the running code (`--code DIR`: another checkout's, to
measure the code before a change on the same rows):

- a check-in's templates: the trainee's own (one indexed query) and the classmates' evidence;
- a classroom snapshot's templates: its roster's, its teachers' and every other teacher of the province;
- the replay index (monitor/adapters/photo_index.py): loading every pHash, a refresh with nothing new, a lookup;
- the public notice (/public/notice.json: every class's trainees and eligible names, masked);
- the clock rules (monitor/services/clock.py): each rule of one tick at 10:00 (morning session running) and at
  18:00 (the day's sessions over), twice each: the first tick judges what fell due, the second is the steady state
  (a tick runs every 15 s).

For each it prints milliseconds per call and what the call touched: SQL statements and rows they returned.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=3000)
    parser.add_argument("--trainees", type=int, default=60, help="per class")
    parser.add_argument("--days", type=int, default=3, help="days of check-ins, today included")
    parser.add_argument("--database-url", default="", help="seed and measure there instead (e.g. PostgreSQL)")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose code is measured")
    parser.add_argument("--skip-notice", action="store_true")
    parser.add_argument("--samples", type=int, default=200)
    return parser.parse_args()


ARGS = parse_args()
sys.path.insert(0, str(ARGS.code.resolve()))

from sqlalchemy import event, func, select  # noqa: E402

from models.clock import SHANGHAI, local_at, local_day_start  # noqa: E402
from models.tables import (  # noqa: E402
    CheckIn,
    ClassSession,
    Evidence,
    FaceTemplate,
    Institution,
    Occupation,
    PhotoHash,
    RosterEntry,
    Snapshot,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
    Verification,
)
from monitor.adapters.face_models import DEFAULT_FACE_MODEL, load_manifest  # noqa: E402
from monitor.adapters.photo_index import PhotoHashIndex  # noqa: E402
from monitor.adapters.storage import Database  # noqa: E402
from monitor.services import checkins as checkin_service  # noqa: E402
from monitor.services import snapshots as snapshot_service  # noqa: E402
from monitor.services.clock import CLOCK_RULES, PolicyClock  # noqa: E402
from monitor.services.ledger import public_notice  # noqa: E402
from monitor.settings import Settings  # noqa: E402

COUNTIES = ["530102", "532901", "532503", "530302", "532801", "530602", "532301"]
SEATS = [(25.0433, 102.7058), (25.6065, 100.2676), (23.3962, 103.3643), (25.4950, 103.8049), (22.0080, 100.7970),
         (27.3370, 103.7170), (25.0330, 101.5460)]
SESSIONS = [("上午", "08:30", "11:30"), ("下午", "14:00", "17:00")]
CLASSES_PER_INSTITUTION = 5
CHUNK = 20_000


class Meter:
    """Counts the SQL statements run and the rows they returned."""

    def __init__(self, db: Database) -> None:
        self.statements = self.rows = 0
        event.listen(db.engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        self.statements += 1

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        out: dict[str, float] = {}
        before = self.statements
        start = time.perf_counter()
        yield out
        out["ms"] = (time.perf_counter() - start) * 1000
        out["statements"] = self.statements - before


# -- seeding -------------------------------------------------------------------------------------------------------
def model_of() -> tuple[str, int]:
    manifest = load_manifest(DEFAULT_FACE_MODEL)
    return f"{manifest.name}@{manifest.source.sha256[:16]}", manifest.dimension


def encodings_pool(dim: int, n: int = 500) -> list[list[float]]:
    rng = random.Random(5)
    pool = []
    for _ in range(n):
        v = [rng.gauss(0, 1) for _ in range(dim)]
        norm = sum(x * x for x in v) ** 0.5
        pool.append([round(x / norm, 5) for x in v])
    return pool


def seed(db: Database, classes: int, per_class: int, days: int, today: date) -> None:
    """The province's rows for the benchmark (see the module text), inserted in bulk through the tables."""
    mv, dim = model_of()
    pool = encodings_pool(dim)
    rng = random.Random(1)
    created = datetime.now(UTC)
    counter = {"sha": 0, "phash": 0}

    def photo(kind: str, subject_id: int, at: datetime, ev: list[dict[str, Any]], ph: list[dict[str, Any]]) -> str:
        counter["sha"] += 1
        sha = f"{counter['sha']:064x}"
        ev.append({"sha256": sha, "size_bytes": 1_000_000, "media_type": "image/jpeg", "width": 3000, "height": 4000,
                   "created_at": at})
        ph.append({"sha256": sha, "phash": f"{rng.getrandbits(64):016x}", "subject_kind": kind,
                   "subject_id": subject_id, "created_at": at})
        return sha

    def flush(conn: Any, batches: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        for table, rows in batches:
            if rows:
                conn.execute(table.__table__.insert(), rows)
                rows.clear()

    institutions = -(-classes // CLASSES_PER_INSTITUTION)
    start_day = today - timedelta(days=days - 1)
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(Occupation.__table__.insert(), [{"id": 1, "code": "BENCH-01", "name": "综合技能（压测）",
                                                      "has_training_standard": True, "has_evaluation_standard": True,
                                                      "has_evaluation_body": True}])
        conn.execute(Institution.__table__.insert(), [
            {"id": i, "name": f"压测职业培训学校{i}", "licence_no": f"BENCH-{i:06d}", "region_code": COUNTIES[i % 7],
             "blacklisted": False, "blacklist_reason": "", "contact_phone": "", "created_at": created}
            for i in range(1, institutions + 1)])
        conn.execute(Venue.__table__.insert(), [
            {"id": i, "institution_id": i, "name": f"教学点{i}", "address": "", "region_code": COUNTIES[i % 7],
             "datum": "WGS84", "shape": "circle", "center_lat": SEATS[i % 7][0] + (i % 50) * 0.001,
             "center_lon": SEATS[i % 7][1], "radius_m": 150.0, "polygon": None, "original": {}, "created_at": created}
            for i in range(1, institutions + 1)])
        conn.execute(Teacher.__table__.insert(), [
            {"id": t, "id_number": f"{520000000000000000 + t}", "name": f"教师{t}", "phone": "", "qualifications": [],
             "blacklisted": False, "created_at": created} for t in range(1, 2 * classes + 1)])
        conn.execute(TrainingClass.__table__.insert(), [
            {"id": c, "code": f"BENCH-{c:05d}", "name": f"压测班{c}", "institution_id": (c - 1) // 5 + 1,
             "venue_id": (c - 1) // 5 + 1, "occupation_id": 1, "mode": "offline", "start_date": start_day,
             "end_date": today + timedelta(days=7), "theory_teacher_id": 2 * c - 1, "practical_teacher_id": 2 * c,
             "status": "running", "liveness_required": False, "level": 5, "created_at": created}
            for c in range(1, classes + 1)])
        conn.execute(ClassSession.__table__.insert(), [
            {"id": 2 * (c - 1) + j + 1, "class_id": c, "name": name, "start_local": s, "end_local": e}
            for c in range(1, classes + 1) for j, (name, s, e) in enumerate(SESSIONS)])
        evidence: list[dict[str, Any]] = []
        hashes: list[dict[str, Any]] = []
        templates: list[dict[str, Any]] = []
        template_id = 0
        for t in range(1, 2 * classes + 1):
            for _ in range(2):
                template_id += 1
                sha = photo("enrolment", t, created, evidence, hashes)
                templates.append({"id": template_id, "person_kind": "teacher", "person_id": t,
                                  "encoding": pool[template_id % len(pool)], "photo_sha256": sha,
                                  "model_version": mv, "created_at": created})
        flush(conn, [(Evidence, evidence), (PhotoHash, hashes), (FaceTemplate, templates)])
        trainees = classes * per_class
        for start in range(1, trainees + 1, CHUNK):
            people, roster = [], []
            for p in range(start, min(trainees, start + CHUNK - 1) + 1):
                people.append({"id": p, "id_number": f"{530000000000000000 + p}", "name": f"学员{p}", "phone": "",
                               "created_at": created})
                c = (p - 1) // per_class + 1
                roster.append({"class_id": c, "trainee_id": p, "category": None, "voucher_no": None})
                if p % 100 == 0 and c < classes:  # 1 %: on a second class at the same times
                    roster.append({"class_id": c + 1, "trainee_id": p, "category": None, "voucher_no": None})
                template_id += 1
                sha = photo("enrolment", p, created, evidence, hashes)
                templates.append({"id": template_id, "person_kind": "trainee", "person_id": p,
                                  "encoding": pool[p % len(pool)], "photo_sha256": sha, "model_version": mv,
                                  "created_at": created})
            conn.execute(Trainee.__table__.insert(), people)
            conn.execute(RosterEntry.__table__.insert(), roster)
            flush(conn, [(Evidence, evidence), (PhotoHash, hashes), (FaceTemplate, templates)])
        checkin_id = verification_id = snapshot_id = 0
        checkins: list[dict[str, Any]] = []
        verifications: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        for c in range(1, classes + 1):
            inst = (c - 1) // 5 + 1
            lat, lon = SEATS[inst % 7][0] + (inst % 50) * 0.001, SEATS[inst % 7][1]
            for d in range(days):
                day = start_day + timedelta(days=d)
                for j, (_, s, e) in enumerate(SESSIONS):
                    session_id = 2 * (c - 1) + j + 1
                    begin, end = local_at(day, s), local_at(day, e)
                    for p in range((c - 1) * per_class + 1, c * per_class + 1):
                        if rng.random() < 0.03:
                            continue
                        marks = [("sign_in", begin - timedelta(minutes=rng.randint(1, 20)))]
                        if rng.random() >= 0.01:
                            marks.append(("sign_out", end + timedelta(minutes=rng.randint(0, 10))))
                        for kind, at in marks:
                            checkin_id += 1
                            verification_id += 1
                            sha = photo("checkin", checkin_id, at, evidence, hashes)
                            checkins.append({
                                "id": checkin_id, "trainee_id": p, "class_id": c, "institution_id": inst,
                                "session_id": session_id, "kind": kind, "captured_at": at,
                                "received_at": at + timedelta(seconds=2), "lat": lat, "lon": lon, "accuracy_m": 8.0,
                                "device_id": f"dev-{p}", "mock_location": False, "photo_sha256": sha,
                                "idempotency_key": None, "status": "passed", "liveness_challenge_id": None})
                            encoding = pool[p % len(pool)] if d == days - 1 and kind == "sign_in" else None
                            verifications.append({
                                "id": verification_id, "subject_kind": "checkin", "subject_id": checkin_id,
                                "passed": True, "face_count": 1, "face_distance": 0.3, "fence_result": "inside",
                                "fence_distance_m": -60.0, "measured": {}, "thresholds": {}, "model_version": mv,
                                "reasons": [], "needs_review": False, "face_encoding": encoding,
                                "created_at": at + timedelta(seconds=5)})
                    if d == days - 1:
                        for k in range(3):
                            at = begin + timedelta(minutes=30 + 60 * k)
                            snapshot_id += 1
                            verification_id += 1
                            sha = photo("snapshot", snapshot_id, at, evidence, hashes)
                            snapshots.append({
                                "id": snapshot_id, "class_id": c, "institution_id": inst, "camera_id": "site:bench",
                                "captured_at": at, "received_at": at + timedelta(seconds=2), "photo_sha256": sha,
                                "idempotency_key": None, "status": "passed"})
                            verifications.append({
                                "id": verification_id, "subject_kind": "snapshot", "subject_id": snapshot_id,
                                "passed": True, "face_count": per_class, "face_distance": None, "fence_result": None,
                                "fence_distance_m": None, "model_version": mv, "reasons": [], "needs_review": False,
                                "measured": {"teachers_seen": [2 * c - 1 + j], "other_teachers_seen": []},
                                "thresholds": {}, "face_encoding": None, "created_at": at + timedelta(seconds=5)})
            if len(checkins) >= CHUNK or c == classes:
                flush(conn, [(Evidence, evidence), (CheckIn, checkins), (Snapshot, snapshots),
                             (Verification, verifications), (PhotoHash, hashes)])
                print(f"  seeded classes 1-{c}: {checkin_id:,} check-ins", flush=True, file=sys.stderr)


# -- measuring -----------------------------------------------------------------------------------------------------
def per_call(meter: Meter, samples: list[Any], call: Callable[[Any], Any]) -> dict[str, float]:
    with meter.measure() as m:
        for sample in samples:
            call(sample)
    return {"ms": m["ms"] / len(samples), "statements": m["statements"] / len(samples)}


def show(name: str, figures: dict[str, float], touches: str) -> None:
    print(f"{name:<44} {figures['ms']:>10.2f} ms {figures['statements']:>9.1f} SQL   {touches}", flush=True)


def main() -> None:
    classes, per_class, days = ARGS.classes, ARGS.trainees, ARGS.days
    now = datetime.now(UTC)
    today = now.astimezone(SHANGHAI).date()
    work = REPO / "var" / "bench_hot_paths"
    work.mkdir(parents=True, exist_ok=True)
    if ARGS.database_url:
        db = Database(ARGS.database_url)
        db.migrate()
        fresh = db.engine.connect().execute(select(func.count()).select_from(TrainingClass)).scalar() == 0
        if fresh:
            seed(db, classes, per_class, days, today)
    else:
        pristine = work / f"seed-{classes}x{per_class}x{days}-{today.isoformat()}.sqlite3"
        if not pristine.exists():
            started = time.perf_counter()
            partial = pristine.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            seeding = Database(f"sqlite:///{partial}")
            seeding.migrate()
            seed(seeding, classes, per_class, days, today)
            with seeding.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            seeding.dispose()
            partial.rename(pristine)
            print(f"seeded in {time.perf_counter() - started:.0f} s: {pristine}", file=sys.stderr)
        run = work / "run.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{run}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(pristine, run)
        db = Database(f"sqlite:///{run}")
        db.migrate()
    settings = Settings(database_url=db.url, data_dir=work / "data")
    mv, _dim = model_of()
    meter = Meter(db)
    rng = random.Random(3)
    with db.session() as session:
        counts = {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in
                  (TrainingClass, Trainee, RosterEntry, FaceTemplate, CheckIn, Snapshot, PhotoHash)}
    print(f"code: {ARGS.code.resolve()}; database: {db.engine.dialect.name}; "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"{'hot path':<44} {'per call':>13} {'per call':>13}   touches")

    # A check-in's templates.
    day_start = local_day_start(now)
    with db.session() as session:
        sample_ids = [rng.randint(1, counts["checkins"]) for _ in range(ARGS.samples)]
        sampled = [c for c in session.scalars(select(CheckIn).where(CheckIn.id.in_(sample_ids)))]
        session.expunge_all()
    with db.session() as session:
        show("check-in: the trainee's own templates", per_call(meter, sampled, lambda c: session.scalars(
            select(FaceTemplate).where(FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == c.trainee_id,
                                       FaceTemplate.model_version == mv).order_by(FaceTemplate.id)).all()),
             "its rows by (kind, person, model) index")
        show("check-in: classmates' evidence", per_call(meter, sampled, lambda c: checkin_service.classmates_evidence(
            session, c, day_start, mv)), "roster's templates + today's passed check-ins' encodings")

    # A classroom snapshot's templates (roster, its teachers, every other teacher).
    snapshot_classes = [rng.randint(1, classes) for _ in range(max(5, ARGS.samples // 20))]

    def snapshot_templates(session: Any, cache: Any, class_id: int) -> int:
        cls = session.get(TrainingClass, class_id)
        teachers = [cls.theory_teacher_id, cls.practical_teacher_id]
        roster = list(session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == class_id)))
        found = snapshot_service.templates_of(session, "trainee", roster, mv)
        if cache is not None:
            found += snapshot_service.teacher_candidates(session, cache, teachers, mv)
        else:  # the code before the teachers' cache
            found += snapshot_service.templates_of(session, "teacher", teachers, mv)
            found += snapshot_service.other_teacher_templates(session, teachers, mv)
        return len(found)

    cache = None
    if hasattr(snapshot_service, "teacher_candidates"):
        from monitor.adapters.template_cache import TeacherTemplates
        cache = TeacherTemplates()
    with db.session() as session:
        first = per_call(meter, snapshot_classes[:1], lambda c: snapshot_templates(session, cache, c))
        show("snapshot: templates (first, cold cache)", first, "roster + every teacher's templates, parsed")
        show("snapshot: templates (each after)", per_call(meter, snapshot_classes[1:], lambda c: snapshot_templates(
            session, cache, c)), "roster + teachers' version query" if cache is not None
            else "roster + every teacher's templates, parsed")

    # The replay index.
    index = PhotoHashIndex()
    with db.session() as session:
        show("replay index: load every pHash (start-up)", per_call(meter, [0], lambda _: index.refresh(session)),
             f"{counts['photo_hashes']:,} rows")
        show("replay index: refresh, nothing new", per_call(meter, list(range(ARGS.samples)),
                                                          lambda _: index.refresh(session)), "rows above last id")
    probes = [f"{rng.getrandbits(64):016x}" for _ in range(ARGS.samples)]
    show("replay index: near-copy lookup", per_call(meter, probes, lambda p: index.find_near(p, 10)),
         "numpy XOR + popcount over every hash, in memory")

    # The public notice (through the API's cache, where there is one).
    if not ARGS.skip_notice:
        from monitor.services import ledger as ledger_service
        notice_now = datetime.combine(today, datetime.min.time(), SHANGHAI) + timedelta(hours=18)
        rate = settings.min_attendance_rate
        notices = ledger_service.NoticeCache() if hasattr(ledger_service, "NoticeCache") else None

        import inspect
        shared = notices is not None and "db" in inspect.signature(notices.get).parameters  # kept in the database

        def notice(session: Any) -> list[Any]:
            if notices is not None:
                return list(notices.get(db if shared else session, notice_now, rate))
            return list(public_notice(session, notice_now, rate))

        with db.session() as session:
            show("public notice (/public/notice.json)", per_call(meter, [0], lambda _: notice(session)),
                 f"{classes} classes' ledgers")
            show("public notice, asked again", per_call(meter, [0], lambda _: notice(session)),
                 "nothing changed in between" + (": the version query only" if notices is not None else "")
                 + (", the build kept in the database for every process" if shared else ""))
        if shared:  # one check-in's status decided by a review, a minute later: what the next build costs
            with db.session() as session:
                changed = session.scalar(select(CheckIn).where(CheckIn.status == "passed").limit(1))
                changed.status = "review"
            db.seal_audit()
            notice_now += timedelta(seconds=notices.min_interval_s + 1)
            with db.session() as session:
                show("public notice after one check-in's review", per_call(meter, [0], lambda _: notice(session)),
                     f"{getattr(notices, 'lines_built', classes)} of {classes} classes' lines built again")

    # The clock rules.
    clock = PolicyClock(settings, db)
    for hhmm in ("10:00", "18:00"):
        moment = datetime.combine(today, datetime.min.time(), SHANGHAI) + timedelta(
            hours=int(hhmm[:2]), minutes=int(hhmm[3:]))
        for tick in (1, 2):
            total = {"ms": 0.0, "statements": 0.0}
            parts = []
            for rule in CLOCK_RULES:
                fired = 0
                with meter.measure() as m:
                    fired = clock.run_rule(rule, moment)
                total["ms"] += m["ms"]
                total["statements"] += m["statements"]
                parts.append(f"{rule.name} {m['ms']:.0f} ms/{m['statements']:.0f} SQL/{fired} fired")
            show(f"clock tick at {hhmm}, {'first (what fell due)' if tick == 1 else 'next (steady)'}", total,
                 "; ".join(parts))
    db.dispose()


if __name__ == "__main__":
    main()
