"""`Idempotency-Key` on creating POSTs (issue 21 item 1): a repeated form or registration returns the first record
and makes no second; the same key for another request is refused; simultaneous repeats make one record; a refused
first attempt does not hold the key; answers holding secrets are never kept; another caller's key is its own."""

from __future__ import annotations

import json
import threading
from typing import Any

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
