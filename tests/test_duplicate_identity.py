"""One face, two identities (冒名, 多领): the 1:N search at enrolment, its decision and its index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.identity import mask_id_number
from models.tables import Anomaly, Event, FaceTemplate
from monitor.adapters.face_index import FaceIndex, nearest_templates
from monitor.adapters.face_tables import FaceVector, IdentityMatch
from monitor.adapters.storage import _MIGRATIONS
from monitor.adapters.vector_index import VectorIndex
from monitor.decisions.identity_match import (
    DuplicateThresholds,
    NeighbourHit,
    PersonRef,
    assumed_false_match_rate,
    decide,
    expected_false_hits,
)
from monitor.demo.world import make_id_number
from tests.helpers import World, auth, face, issue_token_via_api

# -- the pure decision -------------------------------------------------------------------------
T = DuplicateThresholds(max_distance=0.20, review_distance=0.22, margin=0.05, neighbours=10, metric="euclidean")
ME = PersonRef("trainee", 1, "530102199503010011")
A = PersonRef("trainee", 2, "530102199503020022")
B = PersonRef("trainee", 3, "530102199503030033")
A_AS_TEACHER = PersonRef("teacher", 9, A.id_number)
ME_AS_TEACHER = PersonRef("teacher", 7, ME.id_number)


def hit(person: PersonRef, distance: float, template_id: int = 0) -> NeighbourHit:
    return NeighbourHit(template_id or person.id * 100, person, distance, f"sha-{person.id}")


def test_decision_one_clear_other_person_is_a_duplicate() -> None:
    d = decide(ME, [[hit(A, 0.05), hit(B, 0.70)], [hit(A, 0.12), hit(B, 0.66)]], T, gallery_size=2_000_000)
    assert d.outcome == "duplicate" and d.other == A and d.reasons == ("same_face",)
    assert d.distance == pytest.approx(0.085)
    assert d.measured["photos_agree"] is True and d.measured["margin"] == pytest.approx(0.66 - 0.085, abs=1e-3)
    assert d.measured["expected_false_hits_at_max_distance"] == pytest.approx(
        2_000_000 * assumed_false_match_rate(0.20, "euclidean"))
    assert d.thresholds["max_distance"] == 0.20 and d.thresholds["margin"] == 0.05


def test_decision_lookalikes_within_the_margin_go_to_review_not_refusal() -> None:
    d = decide(ME, [[hit(A, 0.10), hit(B, 0.13)]], T)
    assert d.outcome == "review" and "margin" in d.reasons and d.other == A


def test_decision_look_alike_band_and_disagreeing_photos_are_reviewed() -> None:
    band = decide(ME, [[hit(A, 0.21), hit(B, 0.60)]], T)
    assert band.outcome == "review" and band.reasons == ("lookalike_band",)
    # One photo is another person's face, the other photo is not: the photos do not agree.
    split = decide(ME, [[hit(A, 0.05), hit(B, 0.70)], [hit(B, 0.55), hit(A, 0.60)]], T)
    assert split.outcome == "review" and "photos_disagree" in split.reasons
    # The median is close but one photo is far from that person: not a clean duplicate either.
    three = decide(ME, [[hit(A, 0.05)], [hit(A, 0.10)], [hit(A, 0.40)]], T)
    assert three.outcome == "review" and "photos_disagree" in three.reasons


def test_decision_never_compares_a_person_with_themselves() -> None:
    own = decide(ME, [[hit(ME, 0.0), hit(ME_AS_TEACHER, 0.01), hit(A, 0.50)]], T)
    assert own.outcome == "none"
    # A trainee and a teacher with one ID number are one person: no margin problem between them.
    one = decide(ME, [[hit(A, 0.05), hit(A_AS_TEACHER, 0.06), hit(B, 0.70)]], T)
    assert one.outcome == "duplicate" and one.measured["next_person_distance"] == pytest.approx(0.70)


def test_decision_strangers_and_empty_searches_are_nothing() -> None:
    assert decide(ME, [[hit(A, 0.35), hit(B, 0.40)]], T).outcome == "none"
    assert decide(ME, [[]], T).outcome == "none"
    assert decide(ME, [], T).outcome == "none"


def test_assumed_false_match_rate_meets_the_measured_points_and_falls_below() -> None:
    for threshold, rate in ((0.60, 0.345), (0.55, 0.176), (0.50, 0.061), (0.45, 0.011)):
        assert assumed_false_match_rate(threshold, "euclidean") == pytest.approx(rate, rel=1e-6)
    rates = [assumed_false_match_rate(t, "euclidean") for t in (0.45, 0.40, 0.35, 0.30, 0.25, 0.20)]
    assert rates == sorted(rates, reverse=True)
    assert expected_false_hits(2_000_000, 0.20, "euclidean") < 0.01 < expected_false_hits(2_000_000, 0.25, "euclidean")


def test_vector_index_turns_ivf_past_the_flat_limit_and_finds_planted_duplicates() -> None:
    rng = np.random.default_rng(7)
    vectors = (rng.standard_normal((3000, 128)) * 0.05).astype(np.float32)
    index = VectorIndex(flat_limit=1000)
    index.add(vectors[:800])
    assert index.kind == "flat"
    index.add(vectors[800:])
    assert index.kind == "ivf_sq8" and index.size == 3000
    queries = vectors[:50] + (rng.standard_normal((50, 128)) * 0.01).astype(np.float32)
    _, positions = index.search(queries, 5)
    assert sum(int(p[0] == i) for i, p in enumerate(positions)) >= 48


# -- enrolment through the API -------------------------------------------------------------------
def new_person(client: TestClient, admin: str, kind: str, id_number: str, name: str) -> int:
    r = client.post(f"/api/v1/{kind}s", json={"id_number": id_number, "name": name}, headers=auth(admin))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def enrol(client: TestClient, admin: str, kind: str, person_id: int, *photos: str, **form: str):
    files = [("photos", (p.rsplit("/", 1)[-1], face(p), "image/jpeg")) for p in photos]
    return client.post(f"/api/v1/{kind}s/{person_id}/faces", files=files, data=form, headers=auth(admin))


def templates_of(client: TestClient, kind: str, person_id: int) -> int:
    with client.app.state.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(FaceTemplate).where(
            FaceTemplate.person_kind == kind, FaceTemplate.person_id == person_id)) or 0)


def test_one_face_under_another_id_number_is_refused_citing_the_other(world: World) -> None:
    client, admin = world.client, world.admin
    fake = new_person(client, admin, "trainee", make_id_number("530102", date(1990, 7, 7), 321), "欧阳冒")
    r = enrol(client, admin, "trainee", fake, "people/obama/obama-480p.jpg", "people/obama/obama_small.jpg")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "DUPLICATE_IDENTITY"
    detail = body["detail"]
    assert detail["other"]["id"] == world.obama_id and detail["other"]["kind"] == "trainee"
    assert detail["other"]["name"] == "欧建国" and "*" in detail["other"]["id_number_masked"]
    assert detail["other"]["id_number_masked"] in body["message"] and "欧建国" in body["message"]
    assert detail["distance"] <= 0.10 and detail["measured"]["photos_agree"] is True
    assert detail["thresholds"]["max_distance"] == 0.10 and detail["thresholds"]["metric"] == "cosine"
    assert templates_of(client, "trainee", fake) == 0  # refused: no template to sign in with

    with client.app.state.db.session() as session:
        anomaly = session.scalars(select(Anomaly).where(Anomaly.rule == "DUPLICATE_IDENTITY")).one()
        assert anomaly.severity == "high" and anomaly.class_id == world.class_id  # the real obama's class
        assert anomaly.subject_kind == "identity" and anomaly.subject_id == detail["identity_match_id"]
        assert anomaly.evidence["other"]["id"] == world.obama_id and anomaly.thresholds["max_distance"] == 0.10
        # Shown with obama's class: whoever reads that class reads obama, not a person on no class of theirs.
        assert "欧建国" in anomaly.message and "欧阳冒" not in anomaly.message
        assert f"本班次以外的一名学员（记录编号 {fake}）" in anomaly.message
        assert anomaly.evidence["person"] == {"kind": "trainee", "kind_name": "学员", "id": fake, "name": "",
                                              "id_number_masked": ""}
        assert anomaly.trainee_id == world.obama_id
        event = session.scalars(select(Event).where(Event.kind == "anomaly")).all()[-1]
        assert event.payload["rule"] == "DUPLICATE_IDENTITY" and event.payload["photo_sha256"]
        assert event.payload["enrolled_photo_sha256"] and event.payload["class_name"] == "测试班0"

    listed = client.get("/api/v1/identity-matches", headers=auth(world.operator)).json()
    assert listed[0]["state"] == "refused" and listed[0]["other"]["id"] == world.obama_id
    assert listed[0]["person"]["name"] == "欧阳冒"  # the province reads the match whole
    inspector = issue_token_via_api(client, admin, "inspector", "昆明抽查员", regions=["530100"])
    seen = client.get("/api/v1/anomalies?rule=DUPLICATE_IDENTITY", headers=auth(inspector))
    assert seen.status_code == 200 and len(seen.json()) == 1 and "欧阳冒" not in seen.text, seen.text
    assert client.get("/api/v1/identity-matches", headers=auth(world.site)).status_code == 403

    # The admin checked the papers (say, twins): the enrolment goes through, the match keeps the admin's name.
    again = enrol(client, admin, "trainee", fake, "people/obama/obama-480p.jpg", confirm_distinct="true")
    assert again.status_code == 201, again.text
    check = again.json()["identity_check"]
    assert check["outcome"] == "duplicate" and check["state"] == "overridden"
    assert "测试管理员" in check["message"] and templates_of(client, "trainee", fake) == 1


def test_different_people_are_not_duplicates(client: TestClient) -> None:
    world = World.build(client)  # obama, biden and rose_leslie enrolled as three trainees
    with client.app.state.db.session() as session:
        assert session.scalar(select(func.count()).select_from(IdentityMatch)) == 0
    someone = new_person(client, world.admin, "trainee", make_id_number("530102", date(1991, 1, 2), 5), "白新")
    r = enrol(client, world.admin, "trainee", someone, "people/kit_harington/john1.jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["identity_check"]["outcome"] == "none"
    with client.app.state.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Anomaly)) == 0


def test_adding_a_template_is_searched_too_but_never_against_ones_own(world: World) -> None:
    client, admin = world.client, world.admin
    own = enrol(client, admin, "trainee", world.obama_id, "people/obama/obama-720p.jpg")
    assert own.status_code == 201 and own.json()["identity_check"]["outcome"] == "none"
    assert own.json()["face_templates"] == 2
    other = enrol(client, admin, "trainee", world.stranger_id, "people/obama/obama-720p.jpg")
    assert other.status_code == 409, other.text
    assert other.json()["detail"]["other"]["id"] == world.obama_id
    assert templates_of(client, "trainee", world.stranger_id) == 1


def test_one_id_number_as_teacher_and_trainee_is_one_person(world: World) -> None:
    client, admin = world.client, world.admin
    id_number = make_id_number("530102", date(1985, 6, 6), 66)
    teacher = new_person(client, admin, "teacher", id_number, "金雪诺")
    assert enrol(client, admin, "teacher", teacher, "people/kit_harington/john1.jpeg").status_code == 201
    trainee = new_person(client, admin, "trainee", id_number, "金雪诺")
    same = enrol(client, admin, "trainee", trainee, "people/kit_harington/john1.jpeg")
    assert same.status_code == 201, same.text
    assert same.json()["identity_check"]["outcome"] == "none"

    # Under a different ID number it is a duplicate of that one person (teacher and trainee records alike).
    other_number = make_id_number("530102", date(1986, 6, 6), 67)
    impostor = new_person(client, admin, "trainee", other_number, "金冒名")
    r = enrol(client, admin, "trainee", impostor, "people/kit_harington/john1.jpeg")
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert detail["other"]["id_number_masked"] == mask_id_number(id_number)
    assert detail["anomaly_id"] is None  # none of them is on a class yet: the match waits for one
    with client.app.state.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Anomaly)) == 0

    roster = client.post(f"/api/v1/classes/{world.class_id}/roster", json={"trainee_ids": [impostor]},
                         headers=auth(admin))
    assert roster.status_code == 200, roster.text
    with client.app.state.db.session() as session:
        anomaly = session.scalars(select(Anomaly).where(Anomaly.rule == "DUPLICATE_IDENTITY")).one()
        assert anomaly.class_id == world.class_id and anomaly.trainee_id is not None
        match = session.get(IdentityMatch, detail["identity_match_id"])
        assert match is not None and match.anomaly_id == anomaly.id


def index_for(client: TestClient) -> FaceIndex:
    """A 1:N index over the templates of the app's face model, as an API process holds it."""
    engine = client.app.state.engine
    return FaceIndex(model_version=engine.model_version, dim=engine.model.manifest.dimension)


def test_index_is_kept_in_step_and_rebuilt_from_the_database(world: World) -> None:
    client, admin, db = world.client, world.admin, world.client.app.state.db
    first, second = index_for(client), index_for(client)  # as two processes would hold them
    with db.session() as session:
        assert first.refresh(session) == 3 and second.refresh(session) == 3
    someone = new_person(client, admin, "trainee", make_id_number("530102", date(1992, 2, 2), 9), "柳新")
    assert enrol(client, admin, "trainee", someone, "people/alex_lacamoire/img1.jpg").status_code == 201
    with db.session() as session:
        assert first.refresh(session) == 1 and first.refresh(session) == 0
        newest = session.scalars(select(FaceTemplate).order_by(FaceTemplate.id.desc()).limit(1)).one()
        probe = PersonRef("trainee", 10_000, "530102199901010000")
        hits = nearest_templates(session, second, [newest.encoding], probe, k=3, metric="cosine")[0]
        assert hits[0].template_id == newest.id and hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert hits[0].person.id == someone and len(hits) == 4
        # The person themselves never comes back as a neighbour.
        mine = nearest_templates(session, second, [newest.encoding], PersonRef("trainee", someone, "x"), k=3,
                                 metric="cosine")[0]
        assert all(h.person.id != someone for h in mine)
        assert second.stats().templates == 4 and second.stats().last_id == newest.id
        assert second.rebuild(session) == 4
        assert [h.template_id for h in nearest_templates(session, second, [newest.encoding], probe, k=3,
                                                         metric="cosine")[0]] == [h.template_id for h in hits]


def test_templates_without_a_float32_copy_load_from_their_json_and_the_migration_fills_copies(world: World) -> None:
    db = world.client.app.state.db
    with db.session() as session:
        expected = index_for(world.client)
        expected.refresh(session)
        session.query(FaceVector).delete()
    with db.session() as session:
        from_json = index_for(world.client)
        assert from_json.refresh(session) == 3
        probe = session.scalars(select(FaceTemplate).order_by(FaceTemplate.id)).first()
        assert from_json.search([probe.encoding], 3) == expected.search([probe.encoding], 3)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
        command.upgrade(cfg, "head")
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(FaceVector)) == 3


def test_refusal_and_index_on_postgresql(client_factory: Callable[..., TestClient], postgres_url: str) -> None:
    client = client_factory(database_url=postgres_url)
    world = World.build(client)
    fake = new_person(client, world.admin, "trainee", make_id_number("530102", date(1990, 8, 8), 432), "欧冒")
    r = enrol(client, world.admin, "trainee", fake, "people/obama/obama-720p.jpg")
    assert r.status_code == 409 and r.json()["detail"]["other"]["id"] == world.obama_id
    stats = client.get("/api/v1/face-index", headers=auth(world.admin)).json()
    assert stats["templates"] == 3 and stats["kind"] == "flat"
