"""The 双随机 draws' I/O: classes in session, the inspectors' pool, one winner per (day, seq), publication."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.domain import Role
from models.errors import ApiError
from models.scope import Scope, ensure_class
from models.tables import Alert, Anomaly, ClassSession, Draw, Inspection, Institution, Region, TrainingClass, Venue
from monitor.decisions.alert_lifecycle import Outcome
from monitor.decisions.dispatch import ClassPlace, Inspector, Level
from monitor.decisions.draws import (
    ALGORITHM,
    LEGACY_ALGORITHM,
    TIER_NAMES,
    Candidate,
    DrawRule,
    Tier,
    draw_day,
    draw_inspectors,
    eligible_pool,
    legacy_draw_inspectors,
    replay,
    tier_of,
)
from monitor.decisions.inspection_form import CHECKLIST, RESULTS
from monitor.services.crosscheck import shortfalls
from monitor.services.dispatch import load_inspectors
from monitor.settings import Settings

KIND_NAMES = {"daily": "每日抽取", "supplementary": "补充抽取"}
TODO = ("在公示期截止前到场检查（明察暗访，不事先通知机构）：核对培训对象、人数、时间、内容、场地、考勤和教师，"
        "填写《职业技能培训班检查表》，由现场负责人签字后提交")


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), SHANGHAI)
    return start, start + timedelta(days=1)


def candidates_for(session: Session, day: date, lookback_days: int, exclude: frozenset[int] = frozenset()
                   ) -> list[Candidate]:
    """The offline classes in session on `day` (its dates cover the day and it has daily sessions), but `exclude`,
    with their anomalies over the look-back and their institution's confirmed violations."""
    since = datetime.combine(day - timedelta(days=lookback_days), time(0), SHANGHAI)
    anomalies = Counter({cid: int(n) for cid, n in session.execute(
        select(Anomaly.class_id, func.count()).where(Anomaly.created_at >= since).group_by(Anomaly.class_id))})
    violations = Counter({iid: int(n) for iid, n in session.execute(
        select(Alert.institution_id, func.count()).where(Alert.outcome == Outcome.VIOLATION_CONFIRMED.value)
        .group_by(Alert.institution_id)) if iid is not None})
    has_sessions = exists().where(ClassSession.class_id == TrainingClass.id)
    rows = session.execute(select(TrainingClass.id, TrainingClass.institution_id, Venue.region_code)
                           .join(Venue, Venue.id == TrainingClass.venue_id)
                           .where(TrainingClass.start_date <= day, TrainingClass.end_date >= day,
                                  TrainingClass.mode == "offline", has_sessions)
                           .order_by(TrainingClass.id))
    shortfall = shortfalls(session)
    return [Candidate(cid, ClassPlace(county, iid), anomalies[cid], violations[iid], shortfall.get(iid, 0.0))
            for cid, iid, county in rows if cid not in exclude]


def pool_for(session: Session, day: date) -> list[Inspector]:
    """The inspectors a draw of `day` may choose from: active, on duty that day when anyone is, with their ties."""
    start, end = local_day_bounds(day)
    return eligible_pool(load_inspectors(session, start), start, end)


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"class_id": c.class_id, "county_code": c.place.county_code, "institution_id": c.place.institution_id,
            "anomalies": c.anomalies, "violations": c.violations, "employment_shortfall": c.employment_shortfall,
            "weight": c.weight}


def candidate_of(raw: dict[str, Any]) -> Candidate:
    return Candidate(int(raw["class_id"]), ClassPlace(str(raw["county_code"]), int(raw["institution_id"])),
                     int(raw["anomalies"]), int(raw["violations"]), float(raw.get("employment_shortfall", 0.0)))


def roster_json(i: Inspector) -> dict[str, Any]:
    """An inspector of the pool as stored with the draw (ties included: kept inside, never published)."""
    return {"staff_id": i.staff_id, "level": i.level.value, "region_code": i.region_code,
            "tied_institutions": sorted(i.tied_institutions)}


def roster_of(raw: dict[str, Any]) -> Inspector:
    return Inspector(int(raw["staff_id"]), Level(raw["level"]), str(raw["region_code"]),
                     tied_institutions=frozenset(int(t) for t in raw.get("tied_institutions", [])))


def rule_of(settings: Settings) -> DrawRule:
    return DrawRule(settings.draw_rate, settings.draw_classes, settings.draw_take_all)


def day_draws(session: Session, day: date) -> list[Draw]:
    return list(session.scalars(select(Draw).where(Draw.day == day).order_by(Draw.seq)))


def already_candidates(draws: list[Draw]) -> frozenset[int]:
    return frozenset(int(c["class_id"]) for d in draws for c in d.candidates)


def make_draw(session: Session, settings: Settings, day: date, by: str, now: datetime | None = None,
              kind: str = "daily") -> Draw:
    """Draw `day`'s classes and inspectors: the daily draw once (seq 1), then supplementary draws (seq 2, 3, …) over
    the classes in session that no earlier draw of the day had as candidates. The (day, seq) unique constraint
    decides between two processes drawing at once: the loser gets 409 ALREADY_DRAWN."""
    now = now or utc_now()
    earlier = day_draws(session, day)
    if kind == "daily" and earlier:
        raise ApiError(409, "ALREADY_DRAWN", f"{day:%Y年%m月%d日} 已进行每日抽取；此后开班的班次可进行补充抽取")
    if kind == "supplementary" and not earlier:
        raise ApiError(409, "NO_DAILY_DRAW", f"{day:%Y年%m月%d日} 尚未进行每日抽取，须先进行每日抽取")
    candidates = candidates_for(session, day, settings.draw_lookback_days, already_candidates(earlier))
    if kind == "supplementary" and not candidates:
        raise ApiError(409, "NOTHING_TO_DRAW", "没有尚未参加当日抽取的在训班次")
    rule, seed = rule_of(settings), secrets.token_hex(16)
    drawn = draw_day(candidates, rule, seed)
    by_id = {c.class_id: c for c in candidates}
    pool = pool_for(session, day)
    picks = draw_inspectors([by_id[c] for c in drawn], pool, seed)
    window_end = datetime.combine(day + timedelta(days=settings.draw_window_days), time(0), SHANGHAI)
    draw = Draw(day=day, kind=kind, seq=max((d.seq for d in earlier), default=0) + 1, algorithm=ALGORITHM,
                rule=rule.as_json(), seed=seed, candidates=[candidate_json(c) for c in candidates], classes=drawn,
                inspectors={str(k): p.staff_id for k, p in picks.items()}, roster=[roster_json(i) for i in pool],
                window_ends_at=window_end, created_by=by, created_at=now)
    try:
        with session.begin_nested():
            session.add(draw)
            session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "ALREADY_DRAWN", f"{day:%Y年%m月%d日} 的这次抽取已由其他进程完成") from exc
    return draw


def draw_due(session: Session, settings: Settings, now: datetime) -> Draw | None:
    """What the clock draws at `now`: the daily draw once the local time reaches `draw_at` (at start-up if it is
    later), then every `draw_supplementary_minutes` a supplementary draw if classes joined since; else None."""
    local = now.astimezone(SHANGHAI)
    if local.strftime("%H:%M") < settings.draw_at:
        return None
    day = local.date()
    last = session.scalar(select(Draw).where(Draw.day == day).order_by(Draw.seq.desc()).limit(1))
    kind = "daily"
    if last is not None:
        if now - last.created_at < timedelta(minutes=settings.draw_supplementary_minutes):
            return None
        new = candidates_for(session, day, settings.draw_lookback_days, already_candidates(day_draws(session, day)))
        if not new:
            return None
        kind = "supplementary"
    try:
        return make_draw(session, settings, day, "调度系统", now, kind)
    except ApiError as exc:
        if exc.status == 409:  # another process drew first
            return None
        raise


def tiers_of(draw: Draw) -> dict[str, str | None]:
    """Where each drawn class's inspector came from (异地交叉, …), from the stored pool (version 2 draws)."""
    if draw.algorithm != ALGORITHM:
        return {}
    places = {int(c["class_id"]): candidate_of(c).place for c in draw.candidates}
    roster = {int(r["staff_id"]): roster_of(r) for r in draw.roster}
    out: dict[str, str | None] = {}
    for cid in draw.classes:
        staff = draw.inspectors.get(str(cid))
        tier = tier_of(roster[staff], places[int(cid)]) if staff in roster else None
        out[str(cid)] = tier.value if tier else None
    return out


def redo_draw(draw: Draw) -> dict[str, Any]:
    """The classes and inspectors the stored candidates, pool, rule and seed give again, by the draw's algorithm."""
    candidates = [candidate_of(c) for c in draw.candidates]
    rule = DrawRule.of(draw.rule) if draw.rule else DrawRule(1.0, len(draw.classes), True)
    drawn = replay(candidates, rule, draw.seed, draw.algorithm, len(draw.classes))
    by_id = {c.class_id: c for c in candidates}
    roster = [roster_of(r) for r in draw.roster]
    classes = [by_id[c] for c in drawn]
    if draw.algorithm == LEGACY_ALGORITHM:
        inspectors = {str(k): v for k, v in legacy_draw_inspectors(classes, roster, draw.seed).items()}
    else:
        inspectors = {str(k): p.staff_id for k, p in draw_inspectors(classes, roster, draw.seed).items()}
    return {"classes": drawn, "inspectors": inspectors,
            "matches": drawn == list(draw.classes) and inspectors == draw.inspectors}


def draw_out(draw: Draw) -> dict[str, Any]:
    """The whole draw, for the center (operators, admins, auditors): never for sites, never published as is."""
    return {"id": draw.id, "day": draw.day.isoformat(), "kind": draw.kind, "seq": draw.seq,
            "algorithm": draw.algorithm, "rule": draw.rule, "seed": draw.seed, "candidates": draw.candidates,
            "classes": list(draw.classes), "inspectors": dict(draw.inspectors), "tiers": tiers_of(draw),
            "roster": list(draw.roster), "window_ends_at": draw.window_ends_at.isoformat(),
            "published": draw.window_ends_at <= utc_now(), "created_by": draw.created_by,
            "created_at": draw.created_at.isoformat()}


def class_facts(session: Session, class_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Class code and name, institution, venue and county of each class (one query)."""
    rows = session.execute(
        select(TrainingClass, Institution, Venue, Region.name)
        .join(Institution, Institution.id == TrainingClass.institution_id)
        .join(Venue, Venue.id == TrainingClass.venue_id)
        .outerjoin(Region, Region.code == Venue.region_code)
        .where(TrainingClass.id.in_(class_ids)))
    return {cls.id: {"class": cls, "institution": inst, "venue": venue, "county_name": county or ""}
            for cls, inst, venue, county in rows}


def inspections_in_window(session: Session, draw: Draw, class_id: int, staff_id: int | None = None
                          ) -> list[Inspection]:
    query = select(Inspection).where(Inspection.class_id == class_id, Inspection.inspected_at >= draw.created_at,
                                     Inspection.inspected_at < draw.window_ends_at)
    if staff_id is not None:
        query = query.where(Inspection.staff_id == staff_id)
    return list(session.scalars(query.order_by(Inspection.inspected_at)))


def assignments_for(session: Session, staff_id: int, recused: frozenset[int], now: datetime) -> list[dict[str, Any]]:
    """The classes draws gave this inspector whose window is still open (a class of an institution the inspector
    has since declared a tie to is dropped): what, where, until when, what to do, and the forms already filed."""
    out: list[dict[str, Any]] = []
    draws = session.scalars(select(Draw).where(Draw.window_ends_at > now).order_by(Draw.day.desc(), Draw.seq))
    for draw in draws:
        mine = [int(c) for c in draw.classes if draw.inspectors.get(str(c)) == staff_id]
        if not mine:
            continue
        facts, tiers = class_facts(session, mine), tiers_of(draw)
        for cid in mine:
            f = facts.get(cid)
            if f is None or f["institution"].id in recused:
                continue
            cls, venue = f["class"], f["venue"]
            sessions = session.scalars(select(ClassSession).where(ClassSession.class_id == cid)
                                       .order_by(ClassSession.start_local))
            filed = inspections_in_window(session, draw, cid, staff_id)
            tier = tiers.get(str(cid))
            out.append({
                "draw_id": draw.id, "day": draw.day.isoformat(), "kind": draw.kind, "kind_name": KIND_NAMES[draw.kind],
                "class_id": cid, "class_code": cls.code, "class_name": cls.name,
                "class_dates": f"{cls.start_date.isoformat()} 至 {cls.end_date.isoformat()}",
                "sessions": [f"{s.name} {s.start_local}–{s.end_local}" for s in sessions],
                "institution_name": f["institution"].name, "venue_name": venue.name, "venue_address": venue.address,
                "county_name": f["county_name"], "latitude": venue.center_lat, "longitude": venue.center_lon,
                "tier": tier, "tier_name": TIER_NAMES[Tier(tier)] if tier else "",
                "window_ends_at": draw.window_ends_at.isoformat(), "todo": TODO,
                "inspection_ids": [i.id for i in filed], "done": bool(filed)})
    return out


def inspection_result(i: Inspection) -> dict[str, Any]:
    """A filed form as published: kind, time, each item's result and the headcounts; nothing personal (no
    findings text, no names, no signature, no photos)."""
    results = {key: (i.items.get(key) or {}).get("result", "not_checked") for key in CHECKLIST}
    problems = [CHECKLIST[k] for k, r in results.items() if r == "problem"]
    return {"kind": i.kind, "kind_name": "现场检查" if i.kind == "on_site" else "电话抽查",
            "inspected_at": i.inspected_at.isoformat(),
            "items": {k: RESULTS.get(r, r) for k, r in results.items()},
            "headcount_registered": i.headcount_registered, "headcount_present": i.headcount_present,
            "conclusion": f"发现 {len(problems)} 项不符合" if problems else "未发现不符合项",
            "nonconforming": problems}


def public_draw(session: Session, draw: Draw) -> dict[str, Any]:
    """A draw as published once its window has passed: what a re-run needs (algorithm version, rule, seed, the
    candidates in order with their risk), the classes and institutions drawn with the forms filed on them within
    the window, and each drawn inspector's tier; no inspector identity and no declared tie."""
    facts, tiers = class_facts(session, [int(c) for c in draw.classes]), tiers_of(draw)
    classes = []
    for cid in draw.classes:
        f = facts.get(int(cid))
        if f is None:
            continue
        tier = tiers.get(str(cid))
        classes.append({
            "class_id": int(cid), "class_code": f["class"].code, "class_name": f["class"].name,
            "institution_id": f["institution"].id, "institution_name": f["institution"].name,
            "county_code": f["venue"].region_code, "county_name": f["county_name"],
            "inspector_tier": tier, "inspector_tier_name": TIER_NAMES[Tier(tier)] if tier else "",
            "inspections": [inspection_result(i) for i in inspections_in_window(session, draw, int(cid))]})
    return {"id": draw.id, "day": draw.day.isoformat(), "kind": draw.kind, "kind_name": KIND_NAMES.get(draw.kind, ""),
            "seq": draw.seq, "algorithm": draw.algorithm, "rule": draw.rule, "seed": draw.seed,
            "candidates": [{k: c[k] for k in ("class_id", "county_code", "institution_id", "anomalies", "violations")}
                           | {"employment_shortfall": candidate_of(c).employment_shortfall,
                              "weight": candidate_of(c).weight} for c in draw.candidates],
            "drawn": [int(c) for c in draw.classes], "classes": classes,
            "window_starts_at": draw.created_at.isoformat(), "window_ends_at": draw.window_ends_at.isoformat()}


def ensure_class_or_drawn(session: Session, scope: Scope, class_id: int, now: datetime) -> None:
    """The class exists for the caller: in the caller's scope, or drawn for this inspector in a draw whose window is
    open (a cross-county inspector files the form of a class outside their own county); else 404 UNKNOWN_CLASS."""
    staff_id = scope.principal.staff_id
    if scope.role is Role.INSPECTOR and staff_id is not None:
        cls = session.get(TrainingClass, class_id)
        if cls is not None and cls.institution_id not in scope.recused and any(
                d.inspectors.get(str(class_id)) == staff_id and class_id in d.classes
                for d in session.scalars(select(Draw).where(Draw.window_ends_at > now))):
            return
    ensure_class(session, scope, class_id)
