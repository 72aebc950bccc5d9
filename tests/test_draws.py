"""双随机一公开 (clause 七): random classes weighted by risk and random non-recused inspectors, redone exactly from
the recorded seed, kept from sites and published with the seed after the inspection window."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from models.clock import SHANGHAI
from models.tables import Draw
from monitor.decisions.dispatch import ClassPlace, Inspector, Level
from monitor.decisions.draws import ALGORITHM, Candidate, DrawRule, draw_classes, draw_day, draw_inspectors
from monitor.services.draws import draw_due
from tests.crew import Crew
from tests.helpers import auth


def test_a_draw_is_redone_exactly_from_its_seed_and_published_only_after_its_window(crew: Crew) -> None:
    crew.alert_id()  # one anomaly weighs the first class
    r = crew.post("/api/v1/draws", "operator", {})
    assert r.status_code == 201, r.text
    draw = r.json()
    assert len(draw["classes"]) == 1  # 1 in 3 of the 2 classes in session, at least 1: never both
    assert set(draw["classes"]) <= {crew.world.class_id, crew.world.other_class_id}
    staff = draw["inspectors"][str(draw["classes"][0])]
    assert staff != crew.staff["county_tied"] and staff is not None  # the tied one never
    assert not draw["published"] and len(draw["seed"]) == 32 and draw["algorithm"] == ALGORITHM
    assert crew.post("/api/v1/draws", "operator", {}).status_code == 409  # once a day
    redo = crew.client.get(f"/api/v1/draws/{draw['id']}/redo", headers=auth(crew.world.operator)).json()
    assert redo == {"classes": draw["classes"], "inspectors": draw["inspectors"], "matches": True}
    # Kept from sites and from the public until the window has passed; inspectors see their own.
    assert crew.client.get("/api/v1/draws", headers=auth(crew.world.site)).status_code == 403
    assert crew.client.get("/api/v1/draws", headers=auth(crew.tokens["county_a"])).status_code == 403
    drawn_token = next(crew.tokens[k] for k, v in crew.staff.items() if v == staff)
    mine = crew.client.get("/api/v1/my/draws", headers=auth(drawn_token)).json()
    assert mine == [{"day": draw["day"], "class_ids": draw["classes"]}]
    assert crew.client.get("/public/draws.json").json() == []
    with crew.client.app.state.db.session() as s:
        s.execute(update(Draw).values(window_ends_at=crew.now - timedelta(minutes=1)))
    published = crew.client.get("/public/draws.json").json()
    assert [(d["id"], d["seed"], d["drawn"]) for d in published] == [(draw["id"], draw["seed"], draw["classes"])]
    # Anyone can redo it from what was published.
    candidates = [Candidate(c["class_id"], ClassPlace(c["county_code"], c["institution_id"]), c["anomalies"],
                            c["violations"]) for c in published[0]["candidates"]]
    assert draw_day(candidates, DrawRule.of(published[0]["rule"]), draw["seed"]) == draw["classes"]


def test_the_clock_draws_once_a_day_at_the_draw_time(crew: Crew) -> None:
    db, settings = crew.client.app.state.db, crew.client.app.state.settings
    local = crew.now.astimezone(SHANGHAI)
    hour, minute = map(int, settings.draw_at.split(":"))
    early = local.replace(hour=hour, minute=minute) - timedelta(minutes=1)
    late = local.replace(hour=hour, minute=minute) + timedelta(minutes=30)
    with db.session() as s:
        assert draw_due(s, settings, early) is None
        assert draw_due(s, settings, late) is not None
        assert draw_due(s, settings, late + timedelta(hours=1)) is None


CLASSES = [Candidate(i, ClassPlace("530102", 1 + i % 3), anomalies=i % 4, violations=1 if i == 3 else 0)
           for i in range(1, 21)]


def test_risk_weighs_the_draw() -> None:
    counts: Counter[int] = Counter()
    for n in range(3000):
        counts.update(draw_classes(CLASSES, 3, f"seed-{n}"))
    risky, plain = counts[3], counts[4]  # class 3: 3 anomalies and a violation (weight 4.5); class 4: weight 1
    assert risky > 2.5 * plain
    assert all(counts[c.class_id] > 0 for c in CLASSES)  # every class can be drawn


@given(st.text(min_size=1, max_size=40), st.integers(1, 20), st.permutations(CLASSES))
def test_a_draw_depends_only_on_seed_and_candidates(seed: str, k: int, shuffled: list[Candidate]) -> None:
    drawn = draw_classes(CLASSES, k, seed)
    assert drawn == draw_classes(shuffled, k, seed) and len(set(drawn)) == k


@given(st.text(min_size=1, max_size=20), st.lists(st.sets(st.integers(1, 3), max_size=3), min_size=1, max_size=12))
def test_drawn_inspectors_are_never_tied_to_the_class(seed: str, ties: list[set[int]]) -> None:
    region = {Level.COUNTY: "530102", Level.PREFECTURE: "530100", Level.PROVINCE: "530000"}
    levels = [random.Random(n).choice(list(Level)) for n in range(len(ties))]
    roster = [Inspector(n + 1, level, region[level], tied_institutions=frozenset(t))
              for n, (level, t) in enumerate(zip(levels, ties, strict=True))]
    chosen = draw_inspectors(CLASSES, roster, seed)
    by_id = {i.staff_id: i for i in roster}
    for c in CLASSES:
        staff = chosen[c.class_id].staff_id
        if staff is not None:
            assert c.place.institution_id not in by_id[staff].tied_institutions
        else:
            assert all(c.place.institution_id in i.tied_institutions for i in roster)


def test_a_drawn_class_of_an_institution_the_inspector_declares_a_tie_to_leaves_their_draws(crew: Crew) -> None:
    """Outside probe: after declaring a tie (clause 十六), the inspector's draws still listed the tied institution's
    class (their assignments did not): it is no longer theirs to see."""
    from models.tables import TrainingClass

    r = crew.post("/api/v1/draws", "operator", {})
    assert r.status_code == 201, r.text
    draw = r.json()
    drawn = draw["classes"][0]
    staff = draw["inspectors"][str(drawn)]
    key = next(k for k, v in crew.staff.items() if v == staff)
    token = crew.tokens[key]
    assert crew.client.get("/api/v1/my/draws", headers=auth(token)).json() == [
        {"day": draw["day"], "class_ids": [drawn]}]
    with crew.client.app.state.db.session() as s:
        institution = s.get(TrainingClass, drawn).institution_id  # type: ignore[union-attr]
    tie = crew.client.post(f"/api/v1/staff/{staff}/ties", headers=auth(token),
                           json={"institution_id": institution, "relation": "self"})
    assert tie.status_code == 201, tie.text
    assert crew.client.get("/api/v1/my/draws", headers=auth(token)).json() == []
