"""The policy rules that run on the clock or per check-in (clauses 八, 九, 十三, 十四, 十九); pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from models.clock import minutes_of
from models.domain import AnomalyCode, Severity
from monitor.decisions.verdicts import Finding


def judge_session_time(kind: str, local: datetime, start: str, end: str, grace_min: int) -> list[Finding]:
    """OUTSIDE_SESSION: a sign-in earlier than `grace_min` before the start or after the end; a sign-out
    before the start or later than `grace_min` after the end."""
    now = local.hour * 60 + local.minute
    s, e = minutes_of(start), minutes_of(end)
    lo, hi = (s - grace_min, e) if kind == "sign_in" else (s, e + grace_min)
    if lo <= now <= hi:
        return []
    what = "签到" if kind == "sign_in" else "签退"
    return [Finding(AnomalyCode.OUTSIDE_SESSION, Severity.MEDIUM,
                    f"{what}时间 {local:%H:%M} 不在课时 {start}–{end} 内（允许提前/延后 {grace_min} 分钟）",
                    {"local_time": local.strftime("%H:%M"), "session": f"{start}-{end}"},
                    {"session_grace_minutes": grace_min})]


def judge_slot_attendance(signed_in: bool, signed_out: bool, session_name: str, day: date) -> list[Finding]:
    """NO_SHOW or MISSING_SIGNOUT for one rostered trainee in one ended session."""
    if not signed_in:
        return [Finding(AnomalyCode.NO_SHOW, Severity.MEDIUM, f"{day:%m月%d日}{session_name}课时未签到",
                        {"day": day.isoformat(), "session": session_name})]
    if not signed_out:
        return [Finding(AnomalyCode.MISSING_SIGNOUT, Severity.LOW, f"{day:%m月%d日}{session_name}课时有签到无签退",
                        {"day": day.isoformat(), "session": session_name})]
    return []


def judge_silence(last_activity: datetime | None, session_start: datetime, now: datetime,
                  silent_after_min: int) -> list[Finding]:
    """CLASS_SILENT: a class in session sent no check-in or snapshot for `silent_after_min` minutes."""
    since = max(last_activity, session_start) if last_activity else session_start
    quiet = (now - since).total_seconds() / 60
    if quiet < silent_after_min:
        return []
    return [Finding(AnomalyCode.CLASS_SILENT, Severity.MEDIUM,
                    f"上课中已 {quiet:.0f} 分钟没有任何签到或课堂抓拍",
                    {"quiet_minutes": round(quiet), "last_activity": last_activity.isoformat() if last_activity
                     else None}, {"silent_after_minutes": silent_after_min})]


def judge_low_attendance(rate: float | None, scheduled: int, min_rate: float, min_sessions: int) -> list[Finding]:
    """LOW_ATTENDANCE: the attendance rate fell below the subsidy minimum (exactly 80 % is enough)."""
    if rate is None or scheduled < min_sessions or rate >= min_rate:
        return []
    return [Finding(AnomalyCode.LOW_ATTENDANCE, Severity.MEDIUM,
                    f"出勤率 {rate:.1%}（{scheduled} 个课时），低于 {min_rate:.0%}，不得申请培训补贴",
                    {"rate": round(rate, 4), "scheduled": scheduled}, {"min_attendance_rate": min_rate})]


@dataclass(frozen=True)
class ClassFacts:
    institution_name: str
    institution_blacklisted: bool
    teachers: Sequence[tuple[int, str, str, bool]]  # (id, name, id number, blacklisted)
    occupation_name: str
    occupation_ok: tuple[bool, bool, bool]  # training standard, evaluation standard, evaluation body


def judge_class_audit(facts: ClassFacts) -> list[Finding]:
    """BLACKLISTED, CLASS_NOT_ALLOWED and SAME_TEACHER_BOTH for a class that is running."""
    out = []
    if facts.institution_blacklisted:
        out.append(Finding(AnomalyCode.BLACKLISTED, Severity.HIGH,
                           f"已列入黑名单的培训机构“{facts.institution_name}”仍在开班（第九、十九条）", {}))
    for _, name, _, blacklisted in facts.teachers:
        if blacklisted:
            out.append(Finding(AnomalyCode.BLACKLISTED, Severity.HIGH, f"已列入黑名单的教师“{name}”仍在授课", {}))
    missing = [n for ok, n in zip(facts.occupation_ok, ("培训标准", "评价标准", "评价考核机构"), strict=True) if not ok]
    if missing:
        out.append(Finding(AnomalyCode.CLASS_NOT_ALLOWED, Severity.HIGH,
                           f"职业（工种）“{facts.occupation_name}”无{'、'.join(missing)}，不得开班（第十三条）",
                           {"missing": missing}))
    if len(facts.teachers) == 2 and (facts.teachers[0][0] == facts.teachers[1][0]
                                     or facts.teachers[0][2] == facts.teachers[1][2]):
        out.append(Finding(AnomalyCode.SAME_TEACHER_BOTH, Severity.HIGH,
                           f"理论教师与实操教师为同一人（{facts.teachers[0][1]}）（第九条）", {}))
    merged: dict[AnomalyCode, Finding] = {}
    for f in out:
        merged[f.code] = f if f.code not in merged else Finding(
            f.code, f.severity, f"{merged[f.code].message}；{f.message}", {**merged[f.code].evidence, **f.evidence})
    return list(merged.values())


@dataclass(frozen=True)
class Schedule:
    class_id: int
    start: date
    end: date
    windows: Sequence[tuple[str, str]]


def schedules_overlap(a: Schedule, b: Schedule) -> bool:
    """Whether two classes have a day in common and a session window that overlaps on it (offline classes)."""
    if a.end < b.start or b.end < a.start:
        return False
    return any(minutes_of(s1) < minutes_of(e2) and minutes_of(s2) < minutes_of(e1)
               for s1, e1 in a.windows for s2, e2 in b.windows)


def judge_double_enrolment(mine: Schedule, others: Sequence[Schedule]) -> list[Finding]:
    """DOUBLE_ENROLMENT: the trainee is on the roster of another class taught at overlapping times."""
    clashes = sorted(o.class_id for o in others if o.class_id != mine.class_id and schedules_overlap(mine, o))
    if not clashes:
        return []
    return [Finding(AnomalyCode.DOUBLE_ENROLMENT, Severity.HIGH,
                    f"该学员同时在班次 {', '.join(map(str, clashes))} 的花名册中，上课时间重叠（第八条）",
                    {"other_class_ids": clashes})]


def judge_two_places(distance_m: float, minutes_apart: float, other_class_id: int, other_checkin_id: int,
                     max_minutes: float, min_distance_m: float) -> list[Finding]:
    """DOUBLE_ENROLMENT: verified check-ins of one trainee for two classes, at two places at once."""
    if minutes_apart > max_minutes or distance_m < min_distance_m:
        return []
    return [Finding(AnomalyCode.DOUBLE_ENROLMENT, Severity.HIGH,
                    f"{minutes_apart:.0f} 分钟前该学员在相距 {distance_m / 1000:.1f} 公里的班次 {other_class_id} 签到",
                    {"other_class_id": other_class_id, "other_checkin_id": other_checkin_id,
                     "distance_m": round(distance_m), "minutes_apart": round(minutes_apart, 1)})]
