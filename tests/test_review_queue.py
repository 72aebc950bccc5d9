"""The review queue a center can work: oldest first with a service level, batch decisions, online-study heartbeats
and look-alikes at enrolment reviewed too, and what an item still open at the session's end counts for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.clock import SHANGHAI, utc_now
from models.tables import Anomaly, CheckIn, ClassSession, FaceTemplate, OnlineSession, ReviewItem, TrainingClass
from monitor.adapters.face_tables import IdentityMatch
from monitor.services.clock import PolicyClock
from monitor.services.identity import raise_identity_anomaly
from tests.helpers import World, auth, face, heartbeat_dated, issue_token_via_api
from tests.test_policy_rules import add_checkin, local

GREY = {"face_match_threshold": 0.15, "face_mismatch_threshold": 0.55}  # a genuine photo (~0.24) lands between


def put_in_review(world: World, checkin: CheckIn) -> int:
    """A check-in whose face the machine left to an operator, as the worker records it."""
    with world.client.app.state.db.session() as s:
        row = s.get(CheckIn, checkin.id)
        row.status = "review"
        item = ReviewItem(subject_kind="checkin", subject_id=row.id, class_id=row.class_id, trainee_id=row.trainee_id,
                          reason_code="FACE_GREY_ZONE", message="人脸相似距离 0.62 处于复核区间",
                          measured={"face_distance": 0.62}, thresholds={"face_match_threshold": 0.60},
                          state="open", created_at=row.received_at)
        s.add(item)
        s.flush()
        return item.id


def test_an_item_open_at_the_session_end_counts_neither_for_nor_against(world: World) -> None:
    """Yesterday morning: Obama's sign-in and Biden's sign-in and sign-out await review when the session ends.
    NO_SHOW waits; the ledger says 待复核 (not payable). Rejecting Obama's lets NO_SHOW fire; confirming Biden's
    (in one batch) makes the session count."""
    db = world.client.app.state.db
    day = utc_now().astimezone(SHANGHAI).date() - timedelta(days=1)
    with db.session() as s:
        cls = s.get(TrainingClass, world.class_id)
        cls.start_date, cls.end_date = day, day  # a one-day class: yesterday
        for cs in s.scalars(select(ClassSession).where(ClassSession.class_id == world.class_id)):
            s.delete(cs)
        s.flush()
        am = ClassSession(class_id=world.class_id, name="上午", start_local="08:30", end_local="12:00")
        s.add(am)
        s.flush()
        sid = am.id
    obama_in = put_in_review(world, add_checkin(world, world.obama_id, "sign_in", local("08:33", day), sid))
    add_checkin(world, world.obama_id, "sign_out", local("11:57", day), sid)
    biden = [put_in_review(world, add_checkin(world, world.biden_id, kind, local(at, day), sid))
             for kind, at in (("sign_in", "08:34"), ("sign_out", "11:56"))]
    clock = PolicyClock(world.client.app.state.settings, db)
    clock.run(local("12:20", day))
    with db.session() as s:
        assert s.scalars(select(Anomaly).where(Anomaly.rule.in_(["NO_SHOW", "MISSING_SIGNOUT"]))).all() == []

    auditor = issue_token_via_api(world.client, world.admin, "auditor", "审计员")
    ledger = world.client.get(f"/api/v1/classes/{world.class_id}/ledger", headers=auth(auditor)).json()
    rows = {r["trainee_id"]: r for r in ledger["rows"]}
    for trainee in (world.obama_id, world.biden_id):
        row = rows[trainee]
        assert (row["attended"], row["pending_review"], row["eligible"]) == (0, 1, False)
        assert row["eligible_text"] == "待复核"
        assert "待人工复核" in row["reason"] and "不得列入补贴发放" in row["reason"]

    r = world.client.post(f"/api/v1/reviews/{obama_in}/decision", json={"decision": "rejected", "note": "不是本人"},
                          headers=auth(world.operator))
    assert r.status_code == 200 and r.json()["checkin_status"] == "failed"
    r = world.client.post("/api/v1/reviews/decisions", headers=auth(world.operator),
                          json={"review_ids": [*biden, obama_in, 999999], "decision": "confirmed",
                                "note": "电话核实在场"})
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()["decided"]] == biden
    assert {s["id"]: s["code"] for s in r.json()["skipped"]} == {obama_in: "REVIEW_ALREADY_DECIDED",
                                                                 999999: "UNKNOWN_REVIEW"}
    clock.run(local("12:25", day))
    with db.session() as s:
        fired = [(a.rule, a.trainee_id) for a in s.scalars(select(Anomaly).order_by(Anomaly.id))]
    assert ("NO_SHOW", world.obama_id) in fired and ("FACE_MISMATCH", world.obama_id) in fired
    assert not [f for f in fired if f[1] == world.biden_id]
    ledger = world.client.get(f"/api/v1/classes/{world.class_id}/ledger", headers=auth(auditor)).json()
    rows = {r["trainee_id"]: r for r in ledger["rows"]}
    assert (rows[world.biden_id]["attended"], rows[world.biden_id]["eligible_text"]) == (1, "符合")
    assert (rows[world.obama_id]["pending_review"], rows[world.obama_id]["eligible_text"]) == (0, "不符合")


def test_the_queue_is_oldest_first_with_its_service_level(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(review_sla_minutes=60, **GREY)
    world = World.build(client)
    first = world.checkin(face("people/obama/obama2.jpg")).json()
    second = world.checkin(face("people/obama/obama1.jpg")).json()
    assert first["status"] == second["status"] == "review"
    with client.app.state.db.session() as s:  # the second one waited two hours
        late = s.scalar(select(ReviewItem).where(ReviewItem.subject_id == second["id"]))
        late.created_at = utc_now() - timedelta(hours=2)
    items = client.get("/api/v1/reviews", headers=auth(world.operator)).json()
    assert [i["subject_id"] for i in items] == [second["id"], first["id"]]
    assert [i["overdue"] for i in items] == [True, False] and items[0]["age_minutes"] >= 120
    top = items[0]
    assert top["kind"] == "checkin" and top["trainee_name"] == "欧建国" and top["class_name"]
    assert top["photo_sha256"] == second["photo_sha256"] and top["reference_photo_sha256"]
    assert top["thresholds"]["face_engine"] == "faceplugin-arcface"
    due = datetime.fromisoformat(top["due_at"])
    assert due == datetime.fromisoformat(top["created_at"]) + timedelta(minutes=60)
    # The photos are behind authorisation and open for the operator (side by side).
    for sha in (top["photo_sha256"], top["reference_photo_sha256"]):
        assert client.get(f"/api/v1/evidence/{sha}", headers=auth(world.operator)).status_code == 200
    assert client.get("/api/v1/reviews", headers=auth(world.site)).status_code == 403
    auditor = issue_token_via_api(client, world.admin, "auditor", "审计员")
    assert client.get("/api/v1/reviews", headers=auth(auditor)).status_code == 200
    r = client.post("/api/v1/reviews/decisions", headers=auth(auditor),
                    json={"review_ids": [top["id"]], "decision": "confirmed", "note": "看过了"})
    assert r.status_code == 403  # auditors read, they do not decide


def test_a_doubtful_heartbeat_goes_to_review_and_counts_once_confirmed(
        client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(online_max_gap_minutes=15, **GREY)
    world = World.build(client)
    r = client.post("/api/v1/online/sessions", json={"class_id": world.class_id, "trainee_id": world.obama_id},
                    headers=auth(world.site))
    session = r.json()
    start = datetime.now(UTC) - timedelta(minutes=20)
    with client.app.state.db.session() as s:
        s.get(OnlineSession, session["id"]).started_at = start
    for photo, minute in (("people/obama/obama2.jpg", 10), ("people/biden/biden2.jpg", 14)):
        r = heartbeat_dated(client, world.site, session["id"], photo, start + timedelta(minutes=minute))
        assert r.status_code == 201, r.text
    beats = client.get(f"/api/v1/online/sessions/{session['id']}", headers=auth(world.site)).json()["heartbeats"]
    assert [b["status"] for b in beats] == ["review", "failed"]  # a stranger's face is refused, not reviewed
    assert [[r["code"] for r in b["reasons"]] for b in beats] == [["FACE_GREY_ZONE"], ["FACE_MISMATCH"]]
    with client.app.state.db.session() as s:  # a stranger studying in the trainee's name is an alert
        assert s.scalars(select(Anomaly.rule).where(Anomaly.subject_kind == "heartbeat")).all() == ["FACE_MISMATCH"]

    def minutes() -> float:
        day = start.astimezone(SHANGHAI).date()  # the day the session began, whatever the time now
        summary = client.get(f"/api/v1/online/minutes?class_id={world.class_id}&day={day}",
                             headers=auth(world.admin)).json()
        return next(x for x in summary["rows"] if x["trainee_id"] == world.obama_id)["verified_minutes"]

    assert minutes() == 0  # in review: not counted
    [item] = client.get("/api/v1/reviews?kind=heartbeat", headers=auth(world.operator)).json()
    assert item["reason_code"] == "FACE_GREY_ZONE" and "不计入学时" in item["message"]
    assert client.get("/api/v1/reviews?kind=checkin", headers=auth(world.operator)).json() == []
    r = client.post(f"/api/v1/reviews/{item['id']}/decision", json={"decision": "confirmed", "note": "视频核实"},
                    headers=auth(world.operator))
    assert r.status_code == 200 and r.json()["subject_status"] == "passed" and r.json()["kind"] == "heartbeat"
    assert minutes() == 10
    beats = client.get(f"/api/v1/online/sessions/{session['id']}", headers=auth(world.site)).json()["heartbeats"]
    assert beats[0]["reasons"] == []  # confirmed: nothing left to explain


def test_a_rejected_heartbeat_says_the_operator_rejected_it(client_factory: Callable[..., TestClient]) -> None:
    """Outside tester: a grey-zone heartbeat an operator rejected still showed only 「需人工复核」 as its reason."""
    client = client_factory(**GREY)
    world = World.build(client)
    session = client.post("/api/v1/online/sessions", json={"class_id": world.class_id, "trainee_id": world.obama_id},
                          headers=auth(world.site)).json()
    r = client.post(f"/api/v1/online/sessions/{session['id']}/heartbeats",
                    data={"captured_at": datetime.now(UTC).isoformat()},
                    files={"photo": ("h.jpg", face("people/obama/obama2.jpg"), "image/jpeg")}, headers=auth(world.site))
    assert r.json()["status"] == "review", r.text
    [item] = client.get("/api/v1/reviews?kind=heartbeat", headers=auth(world.operator)).json()
    r = client.post(f"/api/v1/reviews/{item['id']}/decision", json={"decision": "rejected", "note": "不是本人"},
                    headers=auth(world.operator))
    assert r.status_code == 200 and r.json()["subject_status"] == "failed", r.text
    [beat] = client.get(f"/api/v1/online/sessions/{session['id']}", headers=auth(world.site)).json()["heartbeats"]
    assert beat["status"] == "failed" and [x["code"] for x in beat["reasons"]] == ["FACE_MISMATCH"], beat
    assert "人工复核认定" in beat["reasons"][0]["message"] and "不是本人" in beat["reasons"][0]["message"]


def test_a_look_alike_found_at_enrolment_is_reviewed(world: World) -> None:
    client = world.client
    assert client.get("/api/v1/reviews", headers=auth(world.operator)).json() == []  # empty queue first
    with client.app.state.db.session() as s:
        mine, theirs = [s.scalar(select(FaceTemplate.photo_sha256).where(FaceTemplate.person_id == p).limit(1))
                        for p in (world.biden_id, world.obama_id)]
        assert mine and theirs
        match = IdentityMatch(person_kind="trainee", person_id=world.biden_id, other_kind="trainee",
                              other_id=world.obama_id, outcome="review", state="accepted", distance=0.28,
                              photo_sha256=mine, other_photo_sha256=theirs, reasons=["lookalike_band"],
                              measured={"distance_median": 0.28},
                              thresholds={"max_distance": 0.10, "review_distance": 0.30, "margin": 0.10,
                                          "neighbours": 10, "metric": "cosine"},
                              decided_by="测试管理员", created_at=utc_now())
        s.add(match)
        s.flush()
        match_id = match.id
        assert raise_identity_anomaly(s, match)  # on the wall as the index judged it: a medium look-alike
    items = client.get("/api/v1/reviews?kind=identity", headers=auth(world.operator)).json()
    assert [(i["kind"], i["id"], i["reason_code"]) for i in items] == [("identity", match_id, "IDENTITY_LOOKALIKE")]
    assert items[0]["photo_sha256"] == mine and items[0]["reference_photo_sha256"] == theirs
    inspector = issue_token_via_api(client, world.admin, "inspector", "抽查员", regions=["530100"])
    assert client.get("/api/v1/reviews?kind=identity", headers=auth(inspector)).json() == []
    r = client.post(f"/api/v1/identity-matches/{match_id}/review", headers=auth(world.operator),
                    json={"decision": "same_person", "note": "两张身份证照片为同一人"})
    assert r.status_code == 200 and r.json()["subject_status"] == "duplicate", r.text
    again = client.post(f"/api/v1/identity-matches/{match_id}/review", headers=auth(world.operator),
                        json={"decision": "distinct", "note": "改判"})
    assert again.status_code == 409
    with client.app.state.db.session() as s:  # the index's finding resolved, the operator's raised beside it
        found = [(a.subject_kind, a.subject_id, a.severity, a.state, a.class_id) for a in s.scalars(
            select(Anomaly).where(Anomaly.rule == "DUPLICATE_IDENTITY").order_by(Anomaly.id))]
    assert found == [("identity", match_id, "medium", "resolved", world.class_id),
                     ("id_review", match_id, "high", "open", world.class_id)]
    assert client.get("/api/v1/reviews?kind=identity", headers=auth(world.operator)).json() == []
    done = client.get("/api/v1/reviews?kind=identity&state=confirmed", headers=auth(world.operator)).json()
    assert [i["decided_by"] for i in done] == ["值班员"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_operators_deciding_one_review_at_once_make_one_decision(
        client_factory: Callable[..., TestClient], database: str, request: pytest.FixtureRequest) -> None:
    """Both press a key at the same moment, one to confirm and one to reject: one wins, the other is told it was
    decided, and the check-in has one verdict and no FACE_MISMATCH from the loser."""
    extra = {"database_url": request.getfixturevalue("postgres_url")} if database == "postgresql" else {}
    client = client_factory(**GREY, **extra)
    world = World.build(client)
    checkin = world.checkin(face("people/obama/obama2.jpg")).json()
    [item] = client.get("/api/v1/reviews", headers=auth(world.operator)).json()
    second = issue_token_via_api(client, world.admin, "operator", "值班员二")
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def decide(token: str, decision: str) -> None:
        barrier.wait()
        answers[decision] = client.post(f"/api/v1/reviews/{item['id']}/decision", headers=auth(token),
                                        json={"decision": decision, "note": "并发复核"}).status_code

    threads = [threading.Thread(target=decide, args=a) for a in ((world.operator, "confirmed"), (second, "rejected"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers.values()) == [200, 409], answers
    winner = next(d for d, code in answers.items() if code == 200)
    status = client.get(checkin["status_url"], headers=auth(world.site)).json()["status"]
    assert status == ("passed" if winner == "confirmed" else "failed")
    with client.app.state.db.session() as s:
        mismatches = s.scalars(select(Anomaly).where(Anomaly.rule == "FACE_MISMATCH")).all()
        assert len(mismatches) == (1 if winner == "rejected" else 0)
        decided = s.get(ReviewItem, item["id"])
        assert decided is not None and decided.state == winner
    client.app.state.db.seal_audit()
    entries = client.get("/api/v1/audit?subject_kind=review_items&limit=500", headers=auth(world.admin)).json()
    updates = [e for e in entries if e["action"] == "review_items.update"]
    assert len(updates) == 1 and updates[0]["detail"]["state"] == winner  # the decision is in the chain, once


def test_a_batch_decision_outlasts_a_write_committed_between_its_read_and_its_write(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each item of a batch is read inside a savepoint (on SQLite, a deferred transaction): a write the worker
    commits between that read and the decision's write made the write fail at once as "locked" (a 503 once in a
    full run). The batch now takes the write lock first, and the other writer waits for it instead."""
    from models.audit import append_audit
    from monitor.services import reviews

    day = utc_now().astimezone(SHANGHAI).date()
    with world.client.app.state.db.session() as s:
        session_id = s.scalars(select(ClassSession.id).where(ClassSession.class_id == world.class_id)).first()
    items = [put_in_review(world, add_checkin(world, world.obama_id, "sign_in", local(at, day), session_id))
             for at in ("08:31", "08:32")]
    db = world.client.app.state.db
    writers: list[threading.Thread] = []
    real_claim = reviews.claim

    def claim_after_another_commit(session: object, statement: object) -> bool:
        def write_elsewhere() -> None:
            with db.engine.begin() as conn:
                append_audit(conn, "test.write", "test", len(writers), {"by": "another connection"})

        writers.append(threading.Thread(target=write_elsewhere))
        writers[-1].start()
        writers[-1].join(2)  # without the lock taken first it lands now, between the read and the write
        return real_claim(session, statement)  # type: ignore[arg-type]

    monkeypatch.setattr(reviews, "claim", claim_after_another_commit)
    r = world.client.post("/api/v1/reviews/decisions", headers=auth(world.operator),
                          json={"review_ids": items, "decision": "confirmed", "note": "电话核实在场"})
    for writer in writers:
        writer.join(30)
    assert r.status_code == 200, r.text
    assert sorted(d["id"] for d in r.json()["decided"]) == sorted(items) and r.json()["skipped"] == []
    assert len(writers) == 2 and not any(w.is_alive() for w in writers)
