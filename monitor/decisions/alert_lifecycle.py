"""An alert's lifecycle: open → dispatched → accepted → on site / phoning → closed (with an outcome and a note);
which action each role may take in which state, and what it leads to; pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlertState(StrEnum):
    OPEN = "open"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    ON_SITE = "on_site"
    PHONING = "phoning"
    CLOSED = "closed"
    RESOLVED = "resolved"  # its anomalies cleared by themselves before anyone was sent (e.g. a late sign-in)


class Action(StrEnum):
    DISPATCH = "dispatch"  # an operator sends it (or the router does)
    ESCALATE = "escalate"  # nobody accepted in time: the next inspector or level is paged
    ACCEPT = "accept"
    ARRIVE = "arrive"  # on site
    PHONE = "phone"  # phoning trainees
    CLOSE = "close"
    DISMISS = "dismiss"  # an operator closes it without sending anyone
    REOPEN = "reopen"
    RETURN = "return"  # nobody on the escalation ladder accepted: back to the operators


class Outcome(StrEnum):
    VIOLATION_CONFIRMED = "violation_confirmed"
    FALSE_ALARM = "false_alarm"
    COULD_NOT_VERIFY = "could_not_verify"


STATE_NAMES = {
    AlertState.OPEN: "待处置", AlertState.DISPATCHED: "已派发", AlertState.ACCEPTED: "已接单",
    AlertState.ON_SITE: "现场核查中", AlertState.PHONING: "电话抽查中", AlertState.CLOSED: "已办结",
    AlertState.RESOLVED: "已自动消除",
}
OUTCOME_NAMES = {
    Outcome.VIOLATION_CONFIRMED: "确认违规", Outcome.FALSE_ALARM: "误报", Outcome.COULD_NOT_VERIFY: "无法核实",
}
ACTION_NAMES = {
    Action.DISPATCH: "派发", Action.ESCALATE: "升级派发", Action.ACCEPT: "接单", Action.ARRIVE: "到达现场",
    Action.PHONE: "开始电话抽查", Action.CLOSE: "办结", Action.DISMISS: "不予派发", Action.REOPEN: "重新打开",
    Action.RETURN: "退回监控中心",
}

PAGE_STATE_NAMES = {"paged": "待接单", "accepted": "已接单", "expired": "超时未接", "withdrawn": "已撤回"}

WORKING = (AlertState.ACCEPTED, AlertState.ON_SITE, AlertState.PHONING)
_MOVES: dict[Action, tuple[tuple[AlertState, ...], AlertState | None]] = {
    Action.DISPATCH: ((AlertState.OPEN,), AlertState.DISPATCHED),
    Action.ESCALATE: ((AlertState.DISPATCHED,), AlertState.DISPATCHED),
    Action.ACCEPT: ((AlertState.DISPATCHED,), AlertState.ACCEPTED),
    Action.ARRIVE: ((AlertState.ACCEPTED, AlertState.PHONING), AlertState.ON_SITE),
    Action.PHONE: ((AlertState.ACCEPTED, AlertState.ON_SITE), AlertState.PHONING),
    Action.CLOSE: (WORKING, AlertState.CLOSED),
    Action.DISMISS: ((AlertState.OPEN, AlertState.DISPATCHED), AlertState.CLOSED),
    Action.REOPEN: ((AlertState.CLOSED, AlertState.RESOLVED), AlertState.OPEN),
    # Back to the center: nobody accepted, or the inspector at work declared a tie to the institution (recusal).
    Action.RETURN: ((AlertState.DISPATCHED, *WORKING), AlertState.OPEN),
}
_NEEDS_NOTE = {Action.CLOSE, Action.DISMISS, Action.REOPEN}


@dataclass(frozen=True)
class Refusal:
    """Why a transition is not allowed: an error code and a zh-CN message."""

    code: str
    message: str


def next_state(state: AlertState, action: Action, note: str | None, outcome: Outcome | None
               ) -> AlertState | Refusal:
    """The state `action` leads to from `state`, or why it cannot be taken."""
    allowed, target = _MOVES[action]
    if state not in allowed:
        return Refusal("ALERT_STATE", f"告警当前为「{STATE_NAMES[state]}」，不能{ACTION_NAMES[action]}")
    if action in _NEEDS_NOTE and not (note or "").strip():
        return Refusal("NOTE_REQUIRED", f"{ACTION_NAMES[action]}必须填写说明")
    if action is Action.CLOSE and outcome is None:
        return Refusal("OUTCOME_REQUIRED", "办结必须选择处置结果（确认违规、误报或无法核实）")
    assert target is not None
    return target


CENTER_NOTE_MIN_CHARS = 20  # the center's decision on the evidence, in place of a check or a form
REASON_MIN_CHARS = 10  # why an alert could not be verified


def substantive(note: str | None, min_chars: int) -> bool:
    """A note of substance: at least `min_chars` letters or digits (punctuation and spaces not counted), and not one
    character repeated (at least half as many distinct ones, up to 5)."""
    text = [c for c in (note or "") if c.isalnum()]
    return len(text) >= min_chars and len(set(text)) >= min(5, min_chars // 2)


@dataclass(frozen=True)
class CloseEvidence:
    """What an alert's records show when it is closed."""

    phone_checks_done: int
    inspections_filed: int
    by_center: bool  # an operator or admin closes it (the center's decision), not the inspector


def judge_close(outcome: Outcome, note: str | None, evidence: CloseEvidence) -> Refusal | None:
    """Whether the outcome stands on the alert's evidence (clause 十四: the records ground withholding subsidies and
    blacklisting): a confirmed violation needs a done phone check, a filed inspection form, or the center's
    decision on the evidence with a note of substance; "could not verify" needs a reason of substance."""
    if outcome is Outcome.VIOLATION_CONFIRMED and not (
            evidence.phone_checks_done or evidence.inspections_filed
            or (evidence.by_center and substantive(note, CENTER_NOTE_MIN_CHARS))):
        return Refusal("EVIDENCE_REQUIRED",
                       "「确认违规」须有已完成的电话抽查或已归档的检查表；没有时只能由监控中心依据证据作出决定，"
                       f"并写明所依据的证据（不少于 {CENTER_NOTE_MIN_CHARS} 字）")
    if outcome is Outcome.COULD_NOT_VERIFY and not substantive(note, REASON_MIN_CHARS):
        return Refusal("REASON_REQUIRED", f"以「无法核实」办结须写明具体原因（不少于 {REASON_MIN_CHARS} 字），"
                                          "例如联系不上机构、现场无人")
    return None
