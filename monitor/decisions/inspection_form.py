"""The inspection form (《职业技能培训班检查表》, clause 十四): its checklist, what makes a filed form complete, and
which classes are short of the two inspections each must have; pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

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


def inspections_short(classes: Sequence[ClassTerm], filed: Mapping[int, int], today: date,
                      minimum: int) -> list[tuple[int, int]]:
    """(class id, inspections filed) of every class that started by `today` and has fewer than `minimum`."""
    return [(c.class_id, filed.get(c.class_id, 0)) for c in classes
            if c.start <= today and filed.get(c.class_id, 0) < minimum]
