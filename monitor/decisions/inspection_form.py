"""The inspection form (《职业技能培训班检查表》, clause 十四): its checklist, what makes a filed form complete, and
which classes are short of the two inspections each must have; pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from models.clock import SHANGHAI, local_at

# What clause 十四 says to check, in the form's order: item key -> zh-CN label.
CHECKLIST: dict[str, str] = {
    "trainees": "培训对象（是否为登记学员本人）",
    "headcount": "培训人数（在场人数与登记人数是否相符）",
    "time": "培训时间（是否按备案课时开展）",
    "content": "培训内容（是否与备案一致）",
    "venue": "培训场地（是否为备案场地）",
    "attendance": "培训考勤（签到、签退记录是否真实完整）",
    "teachers": "教师资质（是否为登记教师、资质是否相符）",
    "quality": "培训质量",
}
RESULTS = {"ok": "符合", "problem": "不符合", "not_checked": "未检查"}


SIGNATURE_MIN_INK = 0.002  # of the canvas inked, at least: a blank or a stray tap is not a signature
SIGNATURE_MAX_INK = 0.6  # at most: a filled box is not one either
SIGNATURE_MIN_SPAN = 0.15  # the strokes reach across at least this much of the canvas's width


def judge_signature(ink_pixels: int, span_px: tuple[int, int], size_px: tuple[int, int]) -> str | None:
    """Why a drawn signature cannot stand for a person's signing (zh-CN), or None: `ink_pixels` dark on the
    canvas of `size_px` (width, height) once composited on white, their bounding box `span_px` (width, height)."""
    width, height = size_px
    area = max(1, width * height)
    if ink_pixels < SIGNATURE_MIN_INK * area or span_px[0] < SIGNATURE_MIN_SPAN * width or span_px[1] < 3:
        return "签名为空白或只有一点一划，不能作为签字：请签字人在签名框内写下完整的姓名"
    if ink_pixels > SIGNATURE_MAX_INK * area:
        return "签名框几乎被涂满，不是手写签名：请清除后重新签名"
    return None


def check_form(items: Mapping[str, Mapping[str, str]], findings: str) -> list[str]:
    """What keeps a form from being filed (zh-CN), empty when complete: every item answered, a problem explained."""
    problems = []
    for key, label in CHECKLIST.items():
        answer = items.get(key)
        if answer is None or answer.get("result") not in RESULTS:
            problems.append(f"「{label}」未填写检查结果")
        elif answer["result"] == "problem" and not (answer.get("note") or "").strip():
            problems.append(f"「{label}」不符合，须写明具体情况")
    if unknown := sorted(set(items) - set(CHECKLIST)):
        problems.append(f"检查表没有这些项目：{'、'.join(unknown)}")
    if any(a.get("result") == "problem" for a in items.values()) and not findings.strip():
        problems.append("有不符合项时须填写检查发现")
    return problems


@dataclass(frozen=True)
class ClassTerm:
    class_id: int
    start: date
    end: date


def explain_inspection_time(at: datetime, now: datetime, term: ClassTerm, sessions: Sequence[tuple[str, str]],
                            grace_min: int, future_skew_s: float = 300.0) -> str | None:
    """Why a visit cannot have happened then (zh-CN), or None: not in the future, within the class's dates, and
    within one of its daily sessions (HH:MM local) give or take `grace_min` minutes."""
    if at > now + timedelta(seconds=future_skew_s):
        return "检查时间晚于当前时间"
    local = at.astimezone(SHANGHAI)
    if not term.start <= local.date() <= term.end:
        return f"检查时间 {local:%Y-%m-%d %H:%M} 不在该班次培训期（{term.start} 至 {term.end}）内"
    grace = timedelta(minutes=grace_min)
    if sessions and not any(local_at(local.date(), s) - grace <= local <= local_at(local.date(), e) + grace
                            for s, e in sessions):
        times = "、".join(f"{s}–{e}" for s, e in sessions)
        return f"检查时间 {local:%H:%M} 不在该班次上课时段（{times}，前后 {grace_min} 分钟）内"
    return None


VISIT_UNITS = ("day", "session")


def visit_session(at: datetime, sessions: Sequence[tuple[str, str]]) -> int | None:
    """Which of the class's daily sessions (HH:MM local, start to end) a visit at `at` belongs to: the one it lies in,
    else the nearest (a visit within the grace before or after one), None for a class with no sessions."""
    if not sessions:
        return None
    local = at.astimezone(SHANGHAI)

    def distance(i: int) -> timedelta:
        start, end = local_at(local.date(), sessions[i][0]), local_at(local.date(), sessions[i][1])
        return max(start - local, local - end, timedelta(0))

    return min(range(len(sessions)), key=lambda i: (distance(i), i))


def visits_per_class(inspections: Iterable[tuple[int, datetime]], unit: str = "day",
                     sessions: Mapping[int, Sequence[tuple[str, str]]] | None = None) -> dict[int, int]:
    """Inspections that count toward clause 十四's minimum, per class: visits on different local days (`unit` "day":
    two forms filed the same day are one visit), or in different sessions (`unit` "session": two forms in the
    morning and the afternoon session of one day are two visits, two in one session are one; a class with no
    sessions in `sessions` counts by day)."""
    if unit not in VISIT_UNITS:
        raise ValueError(f"visit unit must be one of {VISIT_UNITS}, not {unit!r}")
    visits: dict[int, set[tuple[date, int | None]]] = {}
    for class_id, at in inspections:
        which = visit_session(at, (sessions or {}).get(class_id, ())) if unit == "session" else None
        visits.setdefault(class_id, set()).add((at.astimezone(SHANGHAI).date(), which))
    return {class_id: len(v) for class_id, v in visits.items()}


def inspections_short(classes: Sequence[ClassTerm], filed: Mapping[int, int], today: date,
                      minimum: int) -> list[tuple[int, int]]:
    """(class id, visits counted) of every class that started by `today` and has fewer than `minimum`."""
    return [(c.class_id, filed.get(c.class_id, 0)) for c in classes
            if c.start <= today and filed.get(c.class_id, 0) < minimum]


def find_contradictions(present_by_check: Mapping[int, int], present_by_form: Mapping[int, int | None]
                        ) -> list[str]:
    """Records of one alert that cannot both be true (zh-CN): a phone check in which N drawn trainees confirmed
    being in class, and a form counting fewer present."""
    out = []
    for form_id, counted in sorted(present_by_form.items()):
        if counted is None:
            continue
        for check_id, confirmed in sorted(present_by_check.items()):
            if confirmed > counted:
                out.append(f"电话抽查 {check_id} 中有 {confirmed} 名学员确认在班，而检查表 {form_id} 记录实到仅 "
                           f"{counted} 人，两者矛盾，须核实")
    return out
