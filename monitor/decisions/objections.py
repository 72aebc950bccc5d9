"""An institution's objection (异议) to a finding against it, and who may decide it: which alerts may be objected to,
a reason of substance, the decision deadline, a second person deciding (never the one who closed the alert nor anyone
who acted on it), and what the institution may read of a finding; pure functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from models.domain import AnomalyCode
from models.timefmt import format_duration_zh
from monitor.decisions.alert_lifecycle import OUTCOME_NAMES, AlertState, Outcome, Refusal, substantive

SHANGHAI = ZoneInfo("Asia/Shanghai")
REASON_MIN_CHARS = 20  # the institution's reason: letters or digits, punctuation and spaces not counted
DECISION_NOTE_MIN_CHARS = 20  # the center's decision: what it rests on


class ObjectionState(StrEnum):
    SUBMITTED = "submitted"  # waiting for the center's decision
    UPHELD = "upheld"  # the finding is re-examined: the alert went back to the center
    REJECTED = "rejected"  # the finding stands


class Decision(StrEnum):
    UPHELD = "upheld"
    REJECTED = "rejected"


OBJECTION_STATE_NAMES = {ObjectionState.SUBMITTED: "待决定", ObjectionState.UPHELD: "异议成立",
                         ObjectionState.REJECTED: "异议驳回"}
OBJECTABLE = (Outcome.VIOLATION_CONFIRMED, Outcome.COULD_NOT_VERIFY)  # findings that weigh against the institution


def judge_objectable(state: AlertState, outcome: Outcome | None, earlier: Iterable[ObjectionState]) -> Refusal | None:
    """Whether the institution may object to the alert now: only an alert closed as a confirmed violation or as
    "could not verify" (what grounds withholding subsidies and blacklisting), once per closing: `earlier` are the
    states of the objections already made against this closing of the alert (a reopened and closed-again alert is a
    new finding)."""
    if state != AlertState.CLOSED:
        return Refusal("ALERT_NOT_CLOSED", "该告警尚在处理中，未作出结论，不能提出异议；"  # never which step (明察暗访)
                                           "办结后如对结论有异议可再提出")
    if outcome not in OBJECTABLE:
        name = OUTCOME_NAMES[outcome] if outcome is not None else "未定"
        return Refusal("OUTCOME_NOT_OBJECTABLE", f"该告警以「{name}」办结，未认定对机构不利的结论，无需提出异议")
    before = set(earlier)
    if ObjectionState.SUBMITTED in before:
        return Refusal("OBJECTION_OPEN", "该告警已有一份异议正在等待监控中心决定，请勿重复提出")
    if before:
        return Refusal("OBJECTION_DECIDED", "对该告警的这一办结结论已提出过异议并已作出决定；"
                                            "如有新的证据，请向培训地人社部门反映")
    return None


def judge_reason(reason: str | None) -> Refusal | None:
    """An objection says why: at least `REASON_MIN_CHARS` letters or digits, not one character repeated."""
    if substantive(reason, REASON_MIN_CHARS):
        return None
    return Refusal("REASON_REQUIRED", f"请写明异议的具体理由和依据（不少于 {REASON_MIN_CHARS} 个汉字、字母或数字），"
                                      "例如学员当天在场的证明、现场情况说明")


def judge_decision_note(note: str | None) -> Refusal | None:
    if substantive(note, DECISION_NOTE_MIN_CHARS):
        return None
    return Refusal("NOTE_REQUIRED",
                   f"决定须写明理由和所依据的证据（不少于 {DECISION_NOTE_MIN_CHARS} 个汉字、字母或数字）")


@dataclass(frozen=True)
class Person:
    """Who: a token's name, and the staff member (inspector) it names, if any."""

    name: str
    staff_id: int | None = None

    def same_as(self, other: Person) -> bool:
        return same_name(self.name, other.name) or (self.staff_id is not None and self.staff_id == other.staff_id)


def same_name(a: str, b: str) -> bool:
    """Whether two token names name one person as people read them: compared in Unicode's compatibility form,
    without invisible characters (zero-width spaces, joiners, soft hyphens), spaces or punctuation, and without an
    addition set off by brackets of any kind or after a dash (" 值班员三", "值班员三（夜班）", "值班员三【夜班】",
    "值班员三-夜班", "值班\u200b员三" and "值班员三" are one). A person given a wholly other name (or the same in
    traditional characters) by an administrator is not caught: operators' tokens are not bound to staff records."""
    return _person_key(a) == _person_key(b)


BRACKETED = re.compile(r"\([^)]*\)?|\[[^\]]*\]?|\{[^}]*\}?|[【〔〖「『《〈][^】〕〗」』》〉]*[】〕〗」』》〉]?")
"""An addition in brackets (NFKC has made full-width round, square and curly ones ASCII), closed or not."""
DASHED = re.compile(r"\s*[-‐‑‒–—―~〜_/|:]+.*$")
"""An addition after a dash, tilde, underscore, slash, bar or colon ("值班员三-夜班", "值班员三：二号台")."""


def _person_key(name: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf")
    text = DASHED.sub("", BRACKETED.sub("", text).strip())
    return "".join(c for c in text if unicodedata.category(c)[0] in "LN")


def judge_decider(decider: Person, closer: Person | None, actors: Iterable[Person]) -> Refusal | None:
    """A second person decides an objection: not the one who closed the alert, nor anyone who acted on it
    (dispatched, accepted, visited, phoned, filed its form, reopened it); the system's own steps name nobody."""
    if closer is not None and decider.same_as(closer):
        return Refusal("DECIDER_CLOSED_ALERT", "您是该告警的办结人，不能决定针对该办结结论的异议；须由未参与处置的"
                                               "另一名值班员或管理员决定")
    if any(decider.same_as(a) for a in actors):
        return Refusal("DECIDER_ACTED_ON_ALERT", "您参与过该告警的处置（派发、接单、核查或办结），"
                                                 "不能决定针对它的异议；须由未参与处置的另一名值班员或管理员决定")
    return None


def decide_deadline(submitted_at: datetime, days: int) -> datetime:
    """The decision is due by the end of the `days`-th calendar day (Asia/Shanghai) after the day of submission
    (returned as the moment that day ends, i.e. the next midnight, aware)."""
    local_day: date = submitted_at.astimezone(SHANGHAI).date()
    return datetime.combine(local_day + timedelta(days=days + 1), time(0), SHANGHAI)


def timer_text(state: ObjectionState, deadline: datetime, now: datetime) -> tuple[bool, str]:
    """(overdue, 计时): how long is left for the decision, or how far past its deadline it is; decided ones say so."""
    if state is not ObjectionState.SUBMITTED:
        return False, "已决定"
    left = (deadline - now).total_seconds()
    if left <= 0:
        return True, f"已超期 {format_duration_zh(left)}"
    return False, f"剩余 {format_duration_zh(left)}"


# -- what an institution may read of a finding ---------------------------------------------------------------------
# Rules whose message names another class, institution or person (a clash with another class, an earlier subsidy,
# another enrolment of the face): the institution reads what was found, not whose records it was found in.
OTHERS_IN_MESSAGE = {
    AnomalyCode.DOUBLE_ENROLMENT: "该学员在其他班次有时间重叠的参训或签到记录（第八条）；"
                                  "涉及其他机构的详情由监控中心掌握",
    AnomalyCode.REPEAT_SUBSIDY: "该学员在规定期限内已以同一职业（工种）和等级取得证书或领取补贴（第八条）；"
                                "涉及其他机构的详情由监控中心掌握",
    AnomalyCode.DUPLICATE_IDENTITY: "该学员的登记人脸与另一身份证号登记的人脸高度相似（第八条）；"
                                    "涉及他人的详情由监控中心掌握",
    # a trainee's social-insurance record (employer, county) is another register's personal data
    AnomalyCode.EMPLOYED_ELSEWHERE: "社会保险记录显示该学员在培训期间另有在职参保记录（第八条）；"
                                    "参保单位等详情由监控中心掌握",
    AnomalyCode.CATEGORY_CONTRADICTED: "该学员登记的人员类别与社会保险记录不符（第八条）；"
                                       "参保单位等详情由监控中心掌握",
}
_HIDDEN_KEY_PARTS = ("sha256", "name", "phone", "id_number", "employer", "certificate", "voucher", "checkin",
                     "trainee", "class", "teacher", "institution")
_NEVER_SHOWN_PARTS = ("key", "gallery", "hash")  # rule_key: an unkeyed hash of another's record; the gallery's size
_HIDDEN_KEYS = {"state", "outcome"}  # another record's (a match under review), not this finding's


def site_message(rule: str, message: str) -> str:
    """The anomaly's explanation as the institution reads it."""
    try:
        return OTHERS_IN_MESSAGE.get(AnomalyCode(rule), message)
    except ValueError:
        return message


def site_figures(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The figures a finding rests on, as the institution may read them: numbers, yes/no and short words of the
    measurement (distances, counts, rates, times, the fence's verdict); never a record id (another upload, another
    class), a photo digest, a person's or another organisation's name, nor lists and nested records."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        lowered = key.lower()
        if lowered == "id" or lowered.endswith(("_id", "_ids")) or lowered in _HIDDEN_KEYS \
                or any(p in lowered for p in _NEVER_SHOWN_PARTS):
            continue
        if isinstance(value, bool | int | float) or value is None:
            out[key] = value
        elif isinstance(value, str) and len(value) <= 80 and not any(p in lowered for p in _HIDDEN_KEY_PARTS):
            out[key] = value
    return out
