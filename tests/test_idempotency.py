"""`Idempotency-Key` on creating POSTs (issue 21 item 1): a repeated form or registration returns the first record
and makes no second; the same key for another request is refused; simultaneous repeats make one record; a refused
first attempt does not hold the key; answers holding secrets are never kept; another caller's key is its own."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from models.tables import IdempotentRequest, Inspection, Occupation
from tests.crew import Crew
from tests.helpers import World, auth, face
from tests.test_inspections import items, signature_png


def file_form(crew: Crew, key: str, findings: str = "在场学员少于签到人数，疑似代签") -> Any:
    form = {"class_id": crew.world.class_id, "kind": "on_site", "items": json.dumps(items()), "findings": findings,
            "responsible_name": "张校长", "headcount_present": 1}
    files = [("signature", ("sign.png", signature_png(), "image/png")),
             ("inspector_signature", ("mine.png", signature_png(), "image/png")),
             ("photos", ("room.jpg", face("groups/two_people.jpg"), "image/jpeg"))]
    return crew.client.post("/api/v1/inspections", headers={**auth(crew.tokens["county_a"]), "Idempotency-Key": key},
                            data={k: str(v) for k, v in form.items()}, files=files)


def count(world: World, model: Any) -> int:
    with world.client.app.state.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_form_submitted_twice_is_filed_once_and_the_repeat_gets_the_first_record(crew: Crew) -> None:
    first = file_form(crew, "form-7f3a")
    assert first.status_code == 201, first.text
    again = file_form(crew, "form-7f3a")  # the phone lost the answer and sends the same form again
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert count(crew.world, Inspection) == 1
    other = file_form(crew, "form-7f3a", findings="另一份不同的检查发现")
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count(crew.world, Inspection) == 1
    bad = crew.client.post("/api/v1/inspections", headers={**auth(crew.tokens["county_a"]),
                                                           "Idempotency-Key": "x" * 101}, data={})
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_IDEMPOTENCY_KEY"


def test_simultaneous_repeats_make_one_record(world: World) -> None:
    before = count(world, Occupation)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def go() -> None:
        barrier.wait()
        answers.append(world.client.post("/api/v1/occupations", json={"code": "6-01-02-03", "name": "电工"},
                                         headers={**auth(world.admin), "Idempotency-Key": "occ-1"}))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers if r.status_code == 201}) == 1
    for r in answers:
        if r.status_code == 409:
            assert r.json()["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS" and r.headers["retry-after"]
    assert count(world, Occupation) == before + 1


def test_a_refused_attempt_frees_its_key_and_secrets_are_never_kept(world: World) -> None:
    headers = {**auth(world.admin), "Idempotency-Key": "inst-1"}
    bad = world.client.post("/api/v1/institutions", headers=headers, json={"name": "某校", "licence_no": "X",
                                                                           "region_code": "999999"})
    assert bad.status_code == 422
    good = world.client.post("/api/v1/institutions", headers=headers, json={
        "name": "昆明某职业培训学校", "licence_no": "LIC-IDEM", "region_code": "530102"})
    assert good.status_code == 201, good.text
    token = world.client.post("/api/v1/tokens", headers={**auth(world.admin), "Idempotency-Key": "tok-1"},
                              json={"role": "operator", "name": "值班员乙"})
    assert token.status_code == 201
    again = world.client.post("/api/v1/tokens", headers={**auth(world.admin), "Idempotency-Key": "tok-1"},
                              json={"role": "operator", "name": "值班员乙"})
    assert again.status_code == 201 and again.json()["token"] != token.json()["token"]  # not replayed: not kept
    with world.client.app.state.db.session() as session:
        kept = session.scalars(select(IdempotentRequest)).all()
        assert [k.path for k in kept] == ["/api/v1/institutions"]
        assert all(token.json()["token"].encode() not in (k.body or b"") for k in kept)
    mine = world.client.post("/api/v1/institutions", headers={**auth(world.operator), "Idempotency-Key": "inst-1"},
                             json={"name": "昆明某职业培训学校", "licence_no": "LIC-IDEM", "region_code": "530102"})
    assert mine.status_code == 403  # another caller's key is its own: this one runs (and is refused its role)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_request_stored_before_the_database_failed_is_never_made_twice(
        backend: str, client_factory: Any, request: pytest.FixtureRequest, monkeypatch: Any) -> None:
    """The database fails after a creating POST committed and before its answer was kept (the answer is a 503): the
    key was marked committed in the same commit, so the repeat is told the submission is stored (once its answer is
    overdue) and no second record is made; when the answer could be kept as failed, the repeat is told at once."""
    import sqlite3
    from contextlib import contextmanager
    from datetime import timedelta

    from sqlalchemy import update
    from sqlalchemy.exc import OperationalError

    from models.clock import utc_now
    from monitor.api import idempotency

    extra = {"database_url": request.getfixturevalue("postgres_url")} if backend == "postgresql" else {}
    world = World.build(client_factory(**extra))
    db = world.client.app.state.db
    failing = {"commit": True, "settle": True}

    real_session = db.session

    @contextmanager
    def session_then_outage() -> Any:  # the route's transaction commits, then the database is gone
        with real_session() as session:
            yield session
        if failing["commit"] and idempotency.CLAIMED.get() is not None:
            failing["commit"] = False
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("server closed the connection"))

    monkeypatch.setattr(db, "session", session_then_outage)

    real_settle = idempotency.settle

    def settle(*args: Any) -> None:
        if failing["settle"]:
            failing["settle"] = False
            raise OperationalError("UPDATE", {}, sqlite3.OperationalError("server closed the connection"))
        real_settle(*args)

    monkeypatch.setattr(idempotency, "settle", settle)
    before = count(world, Occupation)

    def post(key: str, code: str) -> Any:
        return world.client.post("/api/v1/occupations", json={"code": code, "name": "焊工"},
                                 headers={**auth(world.admin), "Idempotency-Key": key})

    first = post("occ-lost", "6-18-02-04")
    assert first.status_code == 503 and first.json()["code"] == "DATABASE_UNAVAILABLE"
    assert count(world, Occupation) == before + 1  # it was stored all the same
    with db.session() as s:
        assert s.scalar(select(IdempotentRequest.state).where(IdempotentRequest.key == "occ-lost")) == "committed"
    soon = post("occ-lost", "6-18-02-04")  # its answer may still come: wait
    assert soon.status_code == 409 and soon.json()["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
    with db.session() as s:  # a minute on, no answer came: its process lost it
        s.execute(update(IdempotentRequest).where(IdempotentRequest.key == "occ-lost").values(
            created_at=utc_now() - timedelta(minutes=2)))
    later = post("occ-lost", "6-18-02-04")
    assert later.status_code == 409 and later.json()["code"] == "IDEMPOTENT_REQUEST_STORED"
    assert "已保存成功" in later.json()["message"]
    with db.session() as s:  # even past the five minutes after which a key never committed may run again
        s.execute(update(IdempotentRequest).where(IdempotentRequest.key == "occ-lost").values(
            created_at=utc_now() - timedelta(minutes=10)))
    assert post("occ-lost", "6-18-02-04").json()["code"] == "IDEMPOTENT_REQUEST_STORED"
    assert count(world, Occupation) == before + 1

    failing["commit"] = True  # again, but the failed answer is kept: the repeat is told at once
    assert post("occ-lost-2", "6-18-02-05").status_code == 503
    with db.session() as s:
        assert s.scalar(select(IdempotentRequest.state).where(IdempotentRequest.key == "occ-lost-2")) == "lost"
    assert post("occ-lost-2", "6-18-02-05").json()["code"] == "IDEMPOTENT_REQUEST_STORED"
    refused = post("occ-free", "6-18-02-04")  # a refusal that wrote nothing still frees its key
    assert refused.status_code == 409 and refused.json()["code"] == "DUPLICATE_OCCUPATION"
    with db.session() as s:
        assert s.scalar(select(IdempotentRequest).where(IdempotentRequest.key == "occ-free")) is None
    assert count(world, Occupation) == before + 2


def test_a_kept_answer_is_not_given_to_a_token_revoked_or_recused_since(crew: Crew) -> None:
    """Starting a phone check (a POST without a body) answers the drawn trainees' phone numbers; the answer is kept
    for repeats. A lost phone's token revoked since is refused (401) like any of its requests, not handed the phone
    numbers again; an inspector who declared a tie to the institution since gets the route's answer (404), not the
    kept one."""
    from tests.test_phone_checks import accepted_alert, sign_in_verified

    sign_in_verified(crew, 5)
    alert_id = accepted_alert(crew)
    key = {"Idempotency-Key": "phone-check-1"}
    token = crew.tokens["county_a"]

    def start() -> Any:
        return crew.client.post(f"/api/v1/alerts/{alert_id}/phone-checks", headers={**auth(token), **key})

    first = start()
    assert first.status_code == 201, first.text
    assert any(t["phone"] for t in first.json()["trainees"])
    again = start()  # the answer was lost on the way: the same one back
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"

    # A tie declared since: the alert is handed back and the class no longer exists for this inspector.
    tie = crew.client.post(f"/api/v1/staff/{crew.staff['county_a']}/ties", headers=auth(token),
                           json={"institution_id": crew.world.ids["institution"], "relation": "self"})
    assert tie.status_code == 201, tie.text
    recused = start()
    assert recused.status_code == 404 and recused.json()["code"] == "UNKNOWN_ALERT", recused.text
    assert "idempotent-replayed" not in recused.headers

    # The token revoked (a lost phone): its kept answers are not given either.
    listed = crew.client.get("/api/v1/tokens", headers=auth(crew.world.admin)).json()
    token_id = next(t["id"] for t in listed if t["staff_id"] == crew.staff["county_a"])
    revoked = crew.client.post(f"/api/v1/tokens/{token_id}/revoke", headers=auth(crew.world.admin),
                               json={"reason": "手机遗失"})
    assert revoked.status_code == 200, revoked.text
    refused = start()
    assert refused.status_code == 401 and refused.json()["code"] == "AUTH_INVALID", refused.text
    assert "phone" not in refused.text


def test_a_step_repeated_under_its_key_gets_its_first_answer_not_a_refusal(crew: Crew) -> None:
    """An inspector's phone closes an alert, loses the 200, and sends the close again with the same key: it used to
    run again and be refused 409 (the alert was closed already), so the phone showed a close that had worked as
    failed. The repeat now gets the first answer; the alert has one close; another key is refused as before."""
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    base = f"/api/v1/alerts/{alert_id}"

    def step(action: str, key: str, body: dict[str, Any] | None = None) -> Any:
        return crew.client.post(f"{base}/{action}", json=body or {},
                                headers={**auth(crew.tokens["county_a"]), "Idempotency-Key": key})

    accepted = step("accept", "acc-1")
    assert accepted.status_code == 200, accepted.text
    again = step("accept", "acc-1")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == accepted.json()
    close = {"outcome": "false_alarm", "note": "学员本人在场"}
    closed = step("close", "close-1", close)
    assert closed.status_code == 200 and closed.json()["state"] == "closed", closed.text
    repeat = step("close", "close-1", close)
    assert repeat.status_code == 200 and repeat.json() == closed.json()
    assert [t["action"] for t in repeat.json()["transitions"]].count("close") == 1
    assert step("close", "close-2", close).status_code == 409  # a new key is a new request: the alert is closed
    refused = step("close", "close-1", {**close, "note": "另一份说明"})
    assert refused.status_code == 422 and refused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    detail = crew.detail(alert_id).json()
    assert [t["action"] for t in detail["transitions"]].count("close") == 1


def test_the_same_token_and_object_however_written_are_the_same_request(world: World) -> None:
    """Outside tester: `bearer` for `Bearer` (the same token) made a second record under the same key, and the same
    JSON object with other spacing was refused IDEMPOTENCY_KEY_REUSED."""
    key = {"Idempotency-Key": "occ-spelt"}
    first = world.client.post("/api/v1/occupations", content=b'{"code": "6-01-02-04", "name": "\\u7535\\u5de5"}',
                              headers={**auth(world.admin), "Content-Type": "application/json", **key})
    assert first.status_code == 201, first.text
    before = count(world, Occupation)
    again = world.client.post("/api/v1/occupations", content='{"name":"电工",\n  "code":"6-01-02-04"}'.encode(),
                              headers={"Authorization": f"bearer   {world.admin}", "Content-Type": "application/json",
                                       **key})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true", again.text
    assert again.json()["id"] == first.json()["id"] and count(world, Occupation) == before


def test_a_repeat_sent_as_the_first_answer_arrives_gets_that_answer(settings_factory: Any) -> None:
    """Outside tester: a repeat sent the moment the first 201 arrived was told IDEMPOTENCY_KEY_IN_PROGRESS about one
    time in three (the answer went out before it was kept). Over a real HTTP server, it now always gets the answer."""
    from monitor.app import create_app
    from tests.helpers import live_world

    with live_world(create_app(settings_factory())) as world:
        for n in range(12):
            headers = {**auth(world.admin), "Idempotency-Key": f"occ-live-{n}"}
            body = {"code": f"6-01-03-{n:02d}", "name": f"工种{n}"}
            first = world.client.post("/api/v1/occupations", json=body, headers=headers)
            again = world.client.post("/api/v1/occupations", json=body, headers=headers)
            assert first.status_code == 201, first.text
            assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true", again.text
            assert again.json() == first.json()


def test_a_kept_answer_rewritten_at_the_database_is_not_handed_out(crew: Crew) -> None:
    """Outside tester: a kept answer rewritten in the database (a pending objection turned into an upheld one) was
    replayed to the site as the product's word. Each kept answer is sealed with the audit key: one whose seal fails
    is not replayed, and the repeat is told the submission was stored instead."""
    from sqlalchemy import update

    first = file_form(crew, "form-sealed")
    assert first.status_code == 201, first.text
    forged = first.content.replace(b'"findings":"', b'"findings":"\\u5df2\\u6838\\u5b9e\\u65e0\\u8bef ')
    assert forged != first.content
    with crew.world.client.app.state.db.engine.begin() as conn:
        conn.execute(update(IdempotentRequest).where(IdempotentRequest.key == "form-sealed").values(body=forged))
    again = file_form(crew, "form-sealed")
    assert again.status_code == 409 and again.json()["code"] == "IDEMPOTENT_REQUEST_STORED", again.text
    assert "签名校验" in again.json()["message"] and b"\\u5df2" not in again.content
    assert count(crew.world, Inspection) == 1  # and it was not filed a second time
