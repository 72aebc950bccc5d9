"""The demo's register extracts: seeding its world also declares categories, vouchers and a level on the first class,
imports small extracts of the five registers through the real preview and commit, and cross-checks, so one of each
kind of register finding is on the wall; a restart on the kept database imports and raises nothing twice."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from models.domain import Role
from models.tables import Anomaly, RegisterImport, RosterEntry, TrainingClass
from monitor.adapters.tokens import issue_token
from monitor.demo.registers import DEMO_LEVEL, seed_crosschecks
from monitor.demo.simulator import ProvinceSimulator
from tests.helpers import FACES_DIR, auth


def test_the_demo_world_shows_each_kind_of_register_finding_once(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    db, settings = client.app.state.db, client.app.state.settings
    with db.session() as session:
        admin = issue_token(session, Role.ADMIN, "演示管理员")
    world = ProvinceSimulator(str(client.base_url), admin, FACES_DIR, seed=5, http=client).register(2)
    first = world.classes[0].id

    seeded = seed_crosschecks(db, settings, first)
    assert sorted(seeded.imported) == ["certificates", "employment", "insurance", "teachers", "vouchers"]
    assert seeded.crosscheck.classes == 2 and seeded.crosscheck.raised == 5
    with db.session() as session:
        found = sorted((a.rule, a.class_id) for a in session.scalars(
            select(Anomaly).where(Anomaly.subject_kind == "crosscheck")))
        assert found == [(rule, first) for rule in ("CATEGORY_CONTRADICTED", "EMPLOYED_ELSEWHERE", "REPEAT_SUBSIDY",
                                                    "TEACHER_CHECK_FAILED", "VOUCHER_INVALID")]
        cls = session.get(TrainingClass, first)
        assert cls is not None and cls.level == DEMO_LEVEL
        declared = session.scalars(select(RosterEntry).where(RosterEntry.class_id == first,
                                                             RosterEntry.category.is_not(None))).all()
        assert len(declared) == 5 and sum(1 for e in declared if e.voucher_no) == 2
    body = client.get(f"/api/v1/classes/{first}/crosscheck", headers=auth(world.operator_token)).json()
    assert [f["rule"] for f in body["teachers"]] == ["TEACHER_CHECK_FAILED"]

    again = seed_crosschecks(db, settings, first)  # the demo restarted on its kept database
    assert again.imported == {} and again.crosscheck.raised == 0 and again.crosscheck.findings == 5
    with db.session() as session:
        assert len(session.scalars(select(Anomaly).where(Anomaly.subject_kind == "crosscheck")).all()) == 5
        assert len(session.scalars(select(RegisterImport)).all()) == 5
