"""The daily 双随机 draw: candidates (classes running that day, weighed by their anomalies and their institution's
confirmed violations) and inspectors drawn from a fresh seed; redone exactly from what the draw stored."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.errors import ApiError
from models.tables import Alert, Anomaly, Draw, TrainingClass, Venue
from monitor.decisions.alert_lifecycle import Outcome
from monitor.decisions.dispatch import ClassPlace, Inspector, Level
from monitor.decisions.draws import Candidate, draw_classes, draw_inspectors
from monitor.services.dispatch import load_inspectors
from monitor.settings import Settings


def candidates_for(session: Session, day: date, lookback_days: int) -> list[Candidate]:
    """Offline classes running on `day`, with their anomalies over the look-back and their institution's record."""
    since = datetime.combine(day - timedelta(days=lookback_days), time(0), SHANGHAI)
    anomalies = Counter({cid: int(n) for cid, n in session.execute(
        select(Anomaly.class_id, func.count()).where(Anomaly.created_at >= since).group_by(Anomaly.class_id))})
    violations = Counter({iid: int(n) for iid, n in session.execute(
        select(Alert.institution_id, func.count()).where(Alert.outcome == Outcome.VIOLATION_CONFIRMED.value)
        .group_by(Alert.institution_id)) if iid is not None})
    rows = session.execute(select(TrainingClass.id, TrainingClass.institution_id, Venue.region_code)
                           .join(Venue, Venue.id == TrainingClass.venue_id)
                           .where(TrainingClass.start_date <= day, TrainingClass.end_date >= day,
                                  TrainingClass.mode == "offline"))
    return [Candidate(cid, ClassPlace(county, iid), anomalies[cid], violations[iid]) for cid, iid, county in rows]


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"class_id": c.class_id, "county_code": c.place.county_code, "institution_id": c.place.institution_id,
            "anomalies": c.anomalies, "violations": c.violations}


def candidate_of(raw: dict[str, Any]) -> Candidate:
    return Candidate(int(raw["class_id"]), ClassPlace(str(raw["county_code"]), int(raw["institution_id"])),
                     int(raw["anomalies"]), int(raw["violations"]))


def roster_json(i: Inspector) -> dict[str, Any]:
    return {"staff_id": i.staff_id, "level": i.level.value, "region_code": i.region_code,
            "tied_institutions": sorted(i.tied_institutions)}


def roster_of(raw: dict[str, Any]) -> Inspector:
    return Inspector(int(raw["staff_id"]), Level(raw["level"]), str(raw["region_code"]),
                     tied_institutions=frozenset(int(t) for t in raw["tied_institutions"]))


def make_draw(session: Session, settings: Settings, day: date, by: str, now: datetime | None = None) -> Draw:
    """Draw `day`'s classes and inspectors (once per day: 409 if it was drawn)."""
    now = now or utc_now()
    if session.scalar(select(Draw.id).where(Draw.day == day)) is not None:
        raise ApiError(409, "ALREADY_DRAWN", f"{day:%Y年%m月%d日} 已经抽取过")
    candidates = candidates_for(session, day, settings.draw_lookback_days)
    seed = secrets.token_hex(16)
    drawn = draw_classes(candidates, settings.draw_classes, seed)
    by_id = {c.class_id: c for c in candidates}
    roster = load_inspectors(session, now)
    inspectors = draw_inspectors([by_id[c] for c in drawn], roster, seed)
    window_end = datetime.combine(day + timedelta(days=settings.draw_window_days), time(0), SHANGHAI)
    draw = Draw(day=day, seed=seed, candidates=[candidate_json(c) for c in candidates], classes=drawn,
                inspectors={str(k): v for k, v in inspectors.items()}, roster=[roster_json(i) for i in roster],
                window_ends_at=window_end, created_by=by,
                created_at=now)
    session.add(draw)
    session.flush()
    return draw


def redo_draw(draw: Draw) -> dict[str, Any]:
    """The classes and inspectors the stored candidates, roster and seed give: anyone can redo a published draw."""
    candidates = [candidate_of(c) for c in draw.candidates]
    drawn = draw_classes(candidates, len(draw.classes), draw.seed)
    by_id = {c.class_id: c for c in candidates}
    inspectors = draw_inspectors([by_id[c] for c in drawn], [roster_of(r) for r in draw.roster], draw.seed)
    return {"classes": drawn, "inspectors": {str(k): v for k, v in inspectors.items()},
            "matches": drawn == list(draw.classes) and {str(k): v for k, v in inspectors.items()} == draw.inspectors}


def draw_out(draw: Draw) -> dict[str, Any]:
    return {"id": draw.id, "day": draw.day.isoformat(), "seed": draw.seed, "candidates": draw.candidates,
            "classes": list(draw.classes), "inspectors": dict(draw.inspectors), "roster": list(draw.roster),
            "window_ends_at": draw.window_ends_at.isoformat(), "published": draw.window_ends_at <= utc_now(),
            "created_by": draw.created_by, "created_at": draw.created_at.isoformat()}


def draw_due(session: Session, settings: Settings, now: datetime) -> Draw | None:
    """Today's draw, made by the clock at `draw_hour` (Asia/Shanghai) if nobody made it yet."""
    local = now.astimezone(SHANGHAI)
    if local.hour < settings.draw_hour or session.scalar(select(Draw.id).where(Draw.day == local.date())):
        return None
    return make_draw(session, settings, local.date(), "调度系统", now)
