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
    """A note of substance: at least `min_chars` letters or digits (punctuation and spaces not counted), not one
    character repeated (at least half as many distinct ones, up to 8), and not a few words said over and over
    ("学员在场学员在场学员在场…", "abcdeabcde…": a text made of one piece repeated at least twice)."""
    text = [c for c in (note or "") if c.isalnum()]
    return (len(text) >= min_chars and len(set(text)) >= min(8, min_chars // 2)
            and smallest_period(text) > len(text) // 2)


def smallest_period(text: list[str]) -> int:
    """The length of the shortest piece whose repetition (the last one possibly cut short) makes `text`: its length
    for a text that repeats nothing (Knuth-Morris-Pratt's failure function, linear in the text's length)."""
    if not text:
        return 0
    border = [0] * len(text)
    k = 0
    for i in range(1, len(text)):
        while k and text[i] != text[k]:
            k = border[k - 1]
        if text[i] == text[k]:
            k += 1
        border[i] = k
    return len(text) - border[-1]


@dataclass(frozen=True)
class CloseEvidence:
    """What an alert's records show when it is closed: its done phone checks and filed forms, and what they found."""

    phone_checks_done: int
    inspections_filed: int
    by_center: bool  # an operator or admin closes it (the center's decision), not the inspector
    absences_confirmed: int = 0  # calls of done checks that reached a trainee who said they were not in class
    presences_confirmed: int = 0  # calls that reached a trainee who confirmed being in class
    forms_with_problems: int = 0  # filed forms with an item found not to comply, or fewer present than registered

    @property
    def shows_violation(self) -> bool:
        return bool(self.absences_confirmed or self.forms_with_problems)

    @property
    def summary(self) -> str:
        return (f"电话抽查 {self.phone_checks_done} 次（{self.presences_confirmed} 人确认在班，"
                f"{self.absences_confirmed} 人称不在班），检查表 {self.inspections_filed} 份"
                f"（{self.forms_with_problems} 份发现不符合项）")


def judge_close(outcome: Outcome, note: str | None, evidence: CloseEvidence) -> Refusal | None:
    """Whether the outcome stands on the alert's evidence (clause 十四: the records ground withholding subsidies and
    blacklisting). A confirmed violation needs a record that shows one (a trainee reached who said they were not in
    class, a form with an item not complying) or the center's decision on the evidence with a note of substance; a
    false alarm may not contradict such a record unless the center decides it with a note of substance; "could not
    verify" needs a reason of substance."""
    center_decides = evidence.by_center and substantive(note, CENTER_NOTE_MIN_CHARS)
    if outcome is Outcome.VIOLATION_CONFIRMED and not (evidence.shows_violation or center_decides):
        if evidence.phone_checks_done or evidence.inspections_filed:
            return Refusal("EVIDENCE_CONTRADICTS",
                           f"本告警的记录没有显示违规：{evidence.summary}；不能以「确认违规」办结。"
                           "如另有证据，须由监控中心作出决定并写明所依据的证据"
                           f"（不少于 {CENTER_NOTE_MIN_CHARS} 字），或继续抽查、现场核查")
        return Refusal("EVIDENCE_REQUIRED",
                       "「确认违规」须有显示违规的电话抽查或检查表；没有时只能由监控中心依据证据作出决定，"
                       f"并写明所依据的证据（不少于 {CENTER_NOTE_MIN_CHARS} 字）")
    if outcome is Outcome.FALSE_ALARM and evidence.shows_violation and not center_decides:
        return Refusal("EVIDENCE_CONTRADICTS",
                       f"本告警的记录显示可能违规：{evidence.summary}；不能以「误报」办结。"
                       "如确属误报，须由监控中心作出决定并写明理由"
                       f"（不少于 {CENTER_NOTE_MIN_CHARS} 字）")
    if outcome is Outcome.COULD_NOT_VERIFY and not substantive(note, REASON_MIN_CHARS):
        return Refusal("REASON_REQUIRED", f"以「无法核实」办结须写明具体原因（不少于 {REASON_MIN_CHARS} 字），"
                                          "例如联系不上机构、现场无人")
    return None
