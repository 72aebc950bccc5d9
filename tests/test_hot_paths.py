"""Hot paths at province size: the clock rules settle what they judged and look again only at what is due or held,
the teachers' templates come from a cache kept at the table's version, and the replay index misses no late row."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from models.clock import SHANGHAI, utc_now
from models.errors import ApiError
from models.tables import (
    Anomaly,
    CheckIn,
    ClassSession,
    Evidence,
    FaceTemplate,
    Institution,
    PhotoHash,
    PublicNotice,
    RuleSubject,
    Trainee,
    TrainingClass,
    Verification,
)
from models.terms import SubjectKind
from monitor.adapters.photo_index import PhotoHashIndex
from monitor.adapters.storage import Database
from monitor.adapters.template_cache import TeacherTemplates
from monitor.services import clock_facts
from monitor.services.clock import PolicyClock
from monitor.services.photo_hashes import earlier_near_copies, reserve_photo_hash
from tests.helpers import World, auth
from tests.test_policy_rules import add_checkin, local, set_two_sessions

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


# -- the clock rules ---------------------------------------------------------------------------------------------------
def test_the_clock_settles_ended_sessions_and_looks_again_only_at_those_held_by_a_review(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    db = world.client.app.state.db
    day = utc_now().astimezone(SHANGHAI).date() - timedelta(days=1)
    am_id, pm_id = set_two_sessions(world, day, day)
    for sid, start, end in ((am_id, "08:30", "12:00"), (pm_id, "14:00", "17:30")):
        add_checkin(world, world.obama_id, "sign_in", local(start, day) + timedelta(minutes=3), sid)
        add_checkin(world, world.obama_id, "sign_out", local(end, day) - timedelta(minutes=3), sid)
    held = add_checkin(world, world.biden_id, "sign_in", local("14:02", day), pm_id)
    add_checkin(world, world.biden_id, "sign_out", local("17:28", day), pm_id)
    with db.session() as s:
        s.get(CheckIn, held.id).status = "review"  # awaiting an operator: holds Biden's afternoon

    loads: list[tuple[str, int]] = []
    real_marks_of, real_tallies = clock_facts.marks_of, clock_facts.attendance_tallies

    def counting_marks_of(session: Any, class_id: int, *args: Any) -> Any:
        loads.append(("marks", class_id))
        return real_marks_of(session, class_id, *args)

    def counting_tallies(session: Any, class_ids: list[int], until: date) -> Any:
        loads.extend(("rates", class_id) for class_id in class_ids)
        return real_tallies(session, class_ids, until)

    monkeypatch.setattr(clock_facts, "marks_of", counting_marks_of)
    monkeypatch.setattr(clock_facts, "attendance_tallies", counting_tallies)
    clock = PolicyClock(world.client.app.state.settings, db)

    def no_shows() -> list[tuple[int | None, str]]:
        with db.session() as s:
            return sorted((a.trainee_id, a.rule) for a in s.scalars(select(Anomaly).where(
                Anomaly.rule.in_(["NO_SHOW", "MISSING_SIGNOUT"]))))

    clock.run(local("18:00", day))
    assert no_shows() == [(world.biden_id, "NO_SHOW")]  # the morning; the afternoon waits for the review
    with db.session() as s:
        settled = set(s.scalars(select(RuleSubject.key).where(RuleSubject.key.like("SLOT:%"))))
    assert settled == {clock_facts.slot_settled_key(world.class_id, am_id, day)}
    loads.clear()
    clock.run(local("18:00", day))
    # the held afternoon and the held day's rates, nothing else
    assert loads == [("marks", world.class_id), ("rates", world.class_id)]

    with db.session() as s:
        s.get(CheckIn, held.id).status = "failed"  # the operator rejected the sign-in
    clock.run(local("18:01", day))
    assert no_shows() == [(world.biden_id, "NO_SHOW"), (world.biden_id, "NO_SHOW")]
    loads.clear()
    clock.run(local("18:02", day))
    assert loads == []  # every session and the day's rates settled: no class's check-ins are read again
    assert len(no_shows()) == 2


# -- the teachers' templates -------------------------------------------------------------------------------------------
def add_template(db: Database, kind: str, person_id: int, value: float, model: str = "m@1") -> int:
    with db.session() as s:
        sha = f"{kind}{person_id}{value}{model}".encode().hex().ljust(64, "0")[:64]
        s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1, created_at=NOW))
        row = FaceTemplate(person_kind=kind, person_id=person_id, encoding=[value, 1.0], photo_sha256=sha,
                           model_version=model, created_at=NOW)
        s.add(row)
        s.flush()
        return row.id


def test_teacher_templates_are_cached_at_the_tables_version(db: Database) -> None:
    add_template(db, "teacher", 1, 0.1)
    add_template(db, "teacher", 2, 0.2)
    add_template(db, "trainee", 3, 0.3)
    add_template(db, "teacher", 4, 0.4, model="other@1")
    cache, other_process = TeacherTemplates(), TeacherTemplates()
    with db.session() as s:
        people, rows = cache.get(s, "m@1")
        assert people == [1, 2] and rows.tolist() == [[0.1, 1.0], [0.2, 1.0]]
        assert cache.get(s, "m@1")[0] == [1, 2] and cache.loads == 1  # unchanged: one count, no rows read
        other_process.get(s, "m@1")
    newest = add_template(db, "teacher", 5, 0.5)  # enrolled by "another process"
    with db.session() as s:
        people, rows = cache.get(s, "m@1")
        assert people == [1, 2, 5] and rows[-1].tolist() == [0.5, 1.0] and cache.loads == 2  # only the new row
        assert other_process.get(s, "m@1")[0] == [1, 2, 5]
        s.execute(delete(FaceTemplate).where(FaceTemplate.person_id == 1))
    with db.session() as s:
        assert cache.get(s, "m@1")[0] == [2, 5]  # a row gone: read again in full
        assert cache.get(s, "other@1")[0] == [4]
        assert s.scalar(select(func.max(FaceTemplate.id))) == newest


# -- the replay index --------------------------------------------------------------------------------------------------
def add_hash(db: Database, row_id: int, phash: str) -> None:
    with db.session() as s:
        sha = f"{row_id:064x}"
        s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1, created_at=NOW))
        s.flush()
        s.add(PhotoHash(id=row_id, sha256=sha, phash=phash, subject_kind="checkin", subject_id=row_id,
                        created_at=NOW))


def test_the_replay_index_finds_a_row_committed_after_a_higher_id(db: Database) -> None:
    """On PostgreSQL an id is taken at insert and seen at commit: id 2 may appear after id 3 was loaded."""
    index = PhotoHashIndex()
    add_hash(db, 1, "00000000000000ff")
    add_hash(db, 3, "ffffffff00000000")
    with db.session() as s:
        index.refresh(s)
    assert index.size == 2 and index.find_near("0f0f0f0f0f0f0f0f", 0) == []
    add_hash(db, 2, "0f0f0f0f0f0f0f0f")  # the late commit
    add_hash(db, 4, "000000000000ffff")
    with db.session() as s:
        index.refresh(s)
        index.refresh(s)  # nothing twice
    assert index.size == 4
    assert index.find_near("0f0f0f0f0f0f0f0f", 0) == [("checkin", 2, 0)]
    assert [hit[1] for hit in index.find_near("000000000000ffff", 0)] == [4]


def add_evidence(db: Database, tag: int) -> str:
    sha = f"{tag:064x}"
    with db.session() as s:
        s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1, created_at=NOW))
    return sha


def test_two_near_copies_judged_at_once_make_exactly_the_later_one_a_replay(db: Database) -> None:
    """Two workers (two indexes) verify near copies at the same moment: each hash is committed before its verdict,
    so whichever worker reads first, the later row is the replay and the earlier is not."""
    for readers in ((0, 1), (1, 0)):
        shas = [add_evidence(db, 100 * (readers[0] + 1) + k) for k in (1, 2)]
        a = reserve_photo_hash(db, shas[0], "0f0f0f0f0f0f0f0f", SubjectKind.CHECKIN, 100 * (readers[0] + 1) + 1)
        b = reserve_photo_hash(db, shas[1], "0f0f0f0f0f0f0f0e", SubjectKind.SNAPSHOT, 100 * (readers[0] + 1) + 2)
        assert a < b
        assert reserve_photo_hash(db, shas[0], "0f0f0f0f0f0f0f0f", SubjectKind.CHECKIN,
                                  100 * (readers[0] + 1) + 1) == a  # a retried job finds its own row
        found = {}
        for who in readers:  # the two workers' reads, in this round's order
            own, phash = ((a, "0f0f0f0f0f0f0f0f"), (b, "0f0f0f0f0f0f0f0e"))[who]
            found[who] = earlier_near_copies(db, PhotoHashIndex(), own, phash, 4)
        assert [hit[:2] for hit in found[0] if hit[1] > 100 * (readers[0] + 1)] == []
        assert [hit[:2] for hit in found[1] if hit[1] > 100 * (readers[0] + 1)] == [
            ("checkin", 100 * (readers[0] + 1) + 1)]
        with db.session() as s:
            s.execute(delete(PhotoHash))


def test_a_lower_row_not_yet_committed_is_awaited_and_a_rolled_back_one_is_not(db: Database) -> None:
    """Hashes with structure (16-48 bits set): a blank frame's hash is a near copy of nothing."""
    index = PhotoHashIndex()
    add_hash(db, 1, "f0f0f0f0f0f0f0f0")
    with db.session() as s:
        index.refresh(s)
    add_hash(db, 3, "0f0f0f0f0f0f0f0f")  # our own row; id 2 is still in another worker's open transaction
    late = threading.Timer(0.3, add_hash, (db, 2, "0f0f0f0f0f0f0f0e"))
    late.start()
    started = time.monotonic()
    found = earlier_near_copies(db, index, 3, "0f0f0f0f0f0f0f0f", 2, wait_s=60.0)
    late.join()
    # it waited for the row (0.3 s) and no longer: far short of the 60 s it would wait for a row that never comes
    assert found == [("checkin", 2, 1)] and 0.25 < time.monotonic() - started < 30.0
    add_hash(db, 5, "3333333333333333")  # id 4 was rolled back: it never comes
    started = time.monotonic()
    assert earlier_near_copies(db, index, 5, "3333333333333333", 0, wait_s=0.4) == []
    assert 0.35 < time.monotonic() - started < 10.0  # gave up after its 0.4 s



# -- the public notice -------------------------------------------------------------------------------------------------
def test_the_public_notice_is_built_again_only_after_a_change(world: World) -> None:
    from monitor.api.reports import NOTICES

    client = world.client
    client.app.state.db.seal_audit()  # the worker's sealer has nothing left to move the version meanwhile
    first = client.get("/public/notice.json").json()["classes"]
    assert client.get("/public/notice.json").json()["classes"] == first
    cache = NOTICES[client.app.state.db]
    assert cache.builds == 1  # asked twice, built once
    cache.min_interval_s = 0  # (60 s by default: a change within a minute of the last build waits for the next)
    trainees = {c["class_code"]: c["trainees"] for c in first}
    r = client.post(f"/api/v1/classes/{world.other_class_id}/roster", json={"trainee_ids": [world.biden_id]},
                    headers=auth(world.admin))
    assert r.status_code == 200, r.text
    after = {c["class_code"]: c["trainees"] for c in client.get("/public/notice.json").json()["classes"]}
    assert cache.builds == 2 and after["TEST-1"] == trainees["TEST-1"] + 1 and after["TEST-0"] == trainees["TEST-0"]


def test_the_public_notice_is_built_by_one_request_at_a_time_and_at_most_once_a_minute(world: World) -> None:
    """The route is public and a build at province size takes most of a minute: concurrent requests after a change
    get the last build (with its own time) while one request builds, and a change within the minimum interval waits
    for it."""
    import threading
    from datetime import datetime

    from monitor.api.reports import NOTICES
    from monitor.services import ledger

    client = world.client
    client.app.state.db.seal_audit()
    first = client.get("/public/notice.json").json()
    cache = NOTICES[client.app.state.db]
    r = client.post(f"/api/v1/classes/{world.other_class_id}/roster", json={"trainee_ids": [world.biden_id]},
                    headers=auth(world.admin))
    assert r.status_code == 200, r.text
    assert client.get("/public/notice.json").json() == first  # changed within the minute: the last build answers
    assert cache.builds == 1
    cache.min_interval_s = 0
    started, release = threading.Event(), threading.Event()
    real_build = ledger.public_notice

    def slow_build(*args: object, **kwargs: object) -> list[dict[str, object]]:
        started.set()
        assert release.wait(30)
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    answers: list[dict[str, object]] = []
    try:
        ledger.public_notice = slow_build  # type: ignore[assignment]
        builder = threading.Thread(target=lambda: answers.append(client.get("/public/notice.json").json()))
        builder.start()
        assert started.wait(30)
        during = [client.get("/public/notice.json").json() for _ in range(3)]  # none of them starts a build
        assert during == [first] * 3
        release.set()
        builder.join(30)
    finally:
        release.set()
        ledger.public_notice = real_build
    assert cache.builds == 2
    rebuilt = answers[0]
    assert datetime.fromisoformat(str(rebuilt["generated_at"])) > datetime.fromisoformat(first["generated_at"])
    trainees = {c["class_code"]: c["trainees"] for c in rebuilt["classes"]}  # type: ignore[attr-defined]
    assert trainees["TEST-1"] == {c["class_code"]: c["trainees"] for c in first["classes"]}["TEST-1"] + 1


def test_the_public_notice_is_built_once_for_every_api_process(world: World) -> None:
    """Two API processes (two caches on one database): after a change, the one whose request claims the stored
    notice builds it; the other answers the last build meanwhile, then reads the new one without building."""
    from monitor.services.ledger import NoticeCache

    db = world.client.app.state.db
    db.seal_audit()
    first, second = NoticeCache(min_interval_s=0), NoticeCache(min_interval_s=0)
    now = utc_now()
    classes, built_at = first.get(db, now, 0.8)
    assert second.get(db, now, 0.8) == (classes, built_at) and (first.builds, second.builds) == (1, 0)
    r = world.client.post(f"/api/v1/classes/{world.other_class_id}/roster", json={"trainee_ids": [world.biden_id]},
                          headers=auth(world.admin))
    assert r.status_code == 200, r.text
    db.seal_audit()  # sealed now, so that the sealer does not move the version again during the test
    later = now + timedelta(seconds=1)
    with db.session() as s:  # the first process is building (its claim stands) while the second is asked
        s.execute(update(PublicNotice).where(PublicNotice.id == 1).values(building_since=later))
    assert second.get(db, later, 0.8) == (classes, built_at) and second.builds == 0
    with db.session() as s:  # a claim left by a process that died while building is taken over after 10 minutes
        s.execute(update(PublicNotice).where(PublicNotice.id == 1).values(building_since=later - timedelta(hours=1)))
    rebuilt, rebuilt_at = second.get(db, later, 0.8)
    assert second.builds == 1 and rebuilt_at == later
    assert {c["class_code"]: c["trainees"] for c in rebuilt}["TEST-1"] == (
        {c["class_code"]: c["trainees"] for c in classes}["TEST-1"] + 1)
    assert first.get(db, later, 0.8) == (rebuilt, later) and first.builds == 1  # read, not built again
    with db.session() as s:
        assert s.scalar(select(PublicNotice.building_since)) is None


@pytest.mark.parametrize("column", ["building_since", "built_at"])
def test_a_claim_or_build_time_set_in_the_future_does_not_hold_the_notice_for_ever(world: World, column: str) -> None:
    """An administrator at the database dates the claim (or the last build) in 2099: the notice would never be built
    again, and the public would read a stale list of classes. A time further ahead than the cluster's clocks
    differ counts as nobody's: the next change is built."""
    from monitor.services.ledger import NoticeCache

    db = world.client.app.state.db
    db.seal_audit()
    cache = NoticeCache(min_interval_s=0)
    now = utc_now()
    cache.get(db, now, 0.8)
    with db.session() as s:  # the stored notice no longer matches what it is built from, and the time is ahead
        s.execute(update(PublicNotice).where(PublicNotice.id == 1).values(
            version="changed", **{column: now + timedelta(days=365 * 70)}))
    later = now + timedelta(seconds=5)
    _, built_at = cache.get(db, later, 0.8)
    assert cache.builds == 2 and built_at == later


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_public_notice_claim_has_one_winner_among_processes_on_every_database(
        backend: str, tmp_path: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six API processes (six caches, each on its own engine) asked at once after a change: the conditional update
    lets exactly one of them build, on SQLite as on PostgreSQL; the others answer the last build meanwhile. Before
    that, the first build ever, asked by six at once with no row: one builds, the others are told to come back (503
    with Retry-After: there is no earlier notice to give)."""
    from monitor.services import ledger
    from monitor.services.ledger import NoticeCache

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/n.sqlite3"
    Database(url).migrate()
    engines = [Database(url) for _ in range(6)]
    caches = [NoticeCache(min_interval_s=0) for _ in engines]
    building = threading.Semaphore(0)
    real_build = ledger.public_notice

    def slow_build(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        building.release()
        time.sleep(0.5)  # long enough for every other request to meet the claim
        return real_build(*args, **kwargs)

    monkeypatch.setattr(ledger, "public_notice", slow_build)
    now = utc_now()

    def ask_all(at: datetime) -> list[Any]:
        barrier, answers = threading.Barrier(len(caches)), []

        def ask(cache: NoticeCache, db: Database) -> None:
            barrier.wait(10)
            try:
                answers.append(cache.get(db, at, 0.8))
            except ApiError as refused:
                answers.append(refused)

        threads = [threading.Thread(target=ask, args=pair) for pair in zip(caches, engines, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return answers

    try:
        first = ask_all(now)  # no row yet
        assert sum(c.builds for c in caches) == 1
        refusals = [a for a in first if isinstance(a, ApiError)]
        assert len(refusals) == 5 and [a[1] for a in first if not isinstance(a, ApiError)] == [now]
        assert {(r.status, r.code, r.headers["Retry-After"]) for r in refusals} == {(503, "NOTICE_BEING_BUILT", "30")}
        with engines[0].session() as s:
            assert s.scalar(select(func.count()).select_from(PublicNotice)) == 1
            stored_at = s.scalar(select(PublicNotice.built_at))
            s.execute(update(PublicNotice).values(version="before a change"))
        before = sum(c.builds for c in caches)
        later = now + timedelta(seconds=5)
        answers = ask_all(later)
        assert sum(c.builds for c in caches) - before == 1  # one winner among six processes
        assert sorted(at == later for _, at in answers) == [False] * 5 + [True]
        assert all(at == stored_at for _, at in answers if at != later)  # the losers answered the last build
        with engines[0].session() as s:
            row = s.execute(select(PublicNotice.built_at, PublicNotice.building_since)).one()
        assert row.built_at == later and row.building_since is None
    finally:
        for db in engines:
            db.dispose()


def test_the_public_notice_route_answers_503_while_the_first_build_runs_elsewhere(world: World) -> None:
    from monitor.services.ledger import NEVER_BUILT

    db = world.client.app.state.db
    with db.session() as s:  # another API process claimed the first build a moment ago
        s.add(PublicNotice(id=1, version="", built_at=NEVER_BUILT, classes=[], building_since=utc_now()))
    r = world.client.get("/public/notice.json")
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    assert r.json()["code"] == "NOTICE_BEING_BUILT" and "公示" in r.json()["message"]
    with db.session() as s:  # that process died while building: ten minutes on, a request takes the build over
        s.execute(update(PublicNotice).values(building_since=utc_now() - timedelta(minutes=11)))
    r = world.client.get("/public/notice.json")
    assert r.status_code == 200 and {c["class_code"] for c in r.json()["classes"]} >= {"TEST-0"}


def test_the_public_notice_says_what_each_class_ledger_says(world: World) -> None:
    from monitor.services.ledger import build_class_ledger, public_notice

    db = world.client.app.state.db
    day = utc_now().astimezone(SHANGHAI).date() - timedelta(days=1)
    with db.session() as s:
        sessions = {cs.class_id: cs.id for cs in s.scalars(select(ClassSession))}
    for trainee, class_id in ((world.obama_id, world.class_id), (world.stranger_id, world.other_class_id)):
        add_checkin(world, trainee, "sign_in", local("00:10", day), sessions[class_id])
        add_checkin(world, trainee, "sign_out", local("23:50", day), sessions[class_id])
    with db.session() as s:
        s.execute(CheckIn.__table__.update().where(CheckIn.trainee_id == world.stranger_id).values(
            class_id=world.other_class_id))
    now = utc_now()
    with db.session() as s:
        expected = []
        for class_id in sorted(s.scalars(select(TrainingClass.id))):
            ledger = build_class_ledger(s, class_id, now, 0.8)
            expected.append((ledger["class"]["code"], ledger["trainees"], ledger["eligible"],
                             sorted(r["trainee_id"] for r in ledger["rows"] if r["eligible"])))
        notice = public_notice(s, now, 0.8, batch=1)
    assert [(c["class_code"], c["trainees"], c["eligible"]) for c in notice] == [e[:3] for e in expected]
    assert [c["eligible"] for c in notice] == [1, 1]  # yesterday attended, today's session not over: 1 of 1


def _notice_now(db: Database, cache: Any, at: datetime) -> list[dict[str, Any]]:
    """The cache's notice at `at`, asserted equal to a notice built whole from the same rows."""
    from monitor.services.ledger import public_notice

    classes, built_at = cache.get(db, at, 0.8)
    assert built_at == at
    with db.session() as s:
        assert classes == public_notice(s, at, 0.8)
    return list(classes)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_after_a_change_the_public_notice_builds_again_only_the_lines_of_the_classes_it_touched(
        database: str, request: pytest.FixtureRequest, client_factory: Any) -> None:
    """At province size a whole build reads every check-in of every term (53 s at 3,000 classes and three days): a
    change builds again the lines of the classes the audit chain names (a row of theirs, their trainee, their
    institution; sealed or not yet), and keeps the others, and the result is what a whole build gives."""
    from monitor.services.ledger import NoticeCache

    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())
    db = world.client.app.state.db
    with db.session() as s:
        sessions = {cs.class_id: cs.id for cs in s.scalars(select(ClassSession))}
    db.seal_audit()
    cache, at = NoticeCache(min_interval_s=0), utc_now()

    def later() -> datetime:
        nonlocal at
        at += timedelta(seconds=1)
        return at

    first = _notice_now(db, cache, at)
    assert cache.lines_built == 2 and [c["class_code"] for c in first] == ["TEST-0", "TEST-1"]
    r = world.client.post(f"/api/v1/classes/{world.other_class_id}/roster", json={"trainee_ids": [world.biden_id]},
                          headers=auth(world.admin))
    assert r.status_code == 200, r.text
    db.seal_audit()
    notice = _notice_now(db, cache, later())
    assert cache.lines_built == 1 and notice[1]["trainees"] == first[1]["trainees"] + 1 and notice[0] == first[0]

    yesterday = at.astimezone(SHANGHAI).date() - timedelta(days=1)  # the class's first day: its one slot has ended
    sign_in = add_checkin(world, world.obama_id, "sign_in", local("08:00", yesterday), sessions[world.class_id])
    add_checkin(world, world.obama_id, "sign_out", local("18:00", yesterday), sessions[world.class_id])
    notice = _notice_now(db, cache, later())  # not sealed yet: entries without a sequence number count too
    assert cache.lines_built == 1 and notice[0]["eligible_names"] == ["欧**"]
    with db.session() as s:  # an update records what changed (the status), not the class: the row is looked up
        s.get(CheckIn, sign_in.id).status = "failed"  # type: ignore[union-attr]
    db.seal_audit()
    notice = _notice_now(db, cache, later())
    assert cache.lines_built == 1 and notice[0]["eligible"] == 0
    with db.session() as s:  # a column the notice does not read (it reads the check-in's status) changes no line
        verification = s.scalar(select(Verification).where(Verification.subject_id == sign_in.id))
        verification.face_distance = 0.31  # type: ignore[union-attr]
    _notice_now(db, cache, later())
    assert cache.lines_built == 0

    with db.session() as s:  # biden is on both classes now
        s.get(Trainee, world.biden_id).name = "白德亮"  # type: ignore[union-attr]
    notice = _notice_now(db, cache, later())
    assert cache.lines_built == 2
    with db.session() as s:
        s.get(Institution, world.ids["institution"]).name = "改名培训学校"  # type: ignore[union-attr]
        s.get(TrainingClass, world.other_class_id).code = "TEST-1-改"  # type: ignore[union-attr]
    db.seal_audit()
    notice = _notice_now(db, cache, later())
    assert cache.lines_built == 2 and [(c["class_code"], c["institution"]) for c in notice] == [
        ("TEST-0", "改名培训学校"), ("TEST-1-改", "测试培训学校1")]
    builds = cache.builds
    again, _ = cache.get(db, later(), 0.8)  # nothing the notice reads changed: the stored build, or (the worker wrote
    assert again == notice and (cache.builds == builds or cache.lines_built == 0)  # something else) every line kept

    next_day = at + timedelta(days=1)  # a new day moves every class's subsidy status: every line is built
    _notice_now(db, cache, next_day)
    assert cache.lines_built == 2


def test_a_session_that_ends_builds_again_the_lines_of_its_classes_only(world: World) -> None:
    from monitor.services.ledger import NoticeCache

    db = world.client.app.state.db
    today = utc_now().astimezone(SHANGHAI).date()
    with db.session() as s:
        s.add(ClassSession(class_id=world.class_id, name="早课", start_local="09:00", end_local="10:15"))
    db.seal_audit()
    cache = NoticeCache(min_interval_s=0)
    _notice_now(db, cache, local("10:00", today))
    assert cache.lines_built == 2
    _notice_now(db, cache, local("10:20", today))  # nothing written since; the 10:15 session has ended
    assert cache.lines_built == 1


def test_the_tables_a_notice_build_reads_are_the_ones_whose_changes_it_follows(world: World) -> None:
    """A table or column read by the notice but missing from NOTICE_INPUTS would leave a changed line stale for the
    day: every one its queries name is there (a column as the chain records it: `evidence` as `evidence_sha256`)."""
    import re

    from sqlalchemy import event

    from models.audit import LEFT_OUT
    from monitor.services.ledger import NOTICE_INPUTS, public_notice

    db = world.client.app.state.db
    read: set[str] = set()
    columns: set[tuple[str, str]] = set()

    this_thread = threading.get_ident()

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() != this_thread:  # the app's relay and sealing threads share the engine
            return
        read.update(re.findall(r"(?:FROM|JOIN)\s+\"?(\w+)", statement))
        columns.update(re.findall(r"\b(\w+)\.(\w+)\b", statement))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        with db.session() as s:
            public_notice(s, utc_now(), 0.8)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert read and read <= NOTICE_INPUTS.keys() and {"checkins", "roster", "alerts"} <= read
    named = {(table, f"{column}_sha256" if column in LEFT_OUT else column) for table, column in columns
             if table in read and column != "id"}
    assert ("anomalies", "evidence_sha256") in named and ("checkins", "status") in named
    assert not {(table, column) for table, column in named if column not in NOTICE_INPUTS[table]}
