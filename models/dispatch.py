"""API shapes of the dispatch wing (pydantic): staff, duty periods, declared ties, alert actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool, StrictInt, model_validator

from models.domain import MAX_UPLOAD_ID, InputModel, PersonName, RecordId, outside_service_area

Note = Annotated[str, Field(min_length=2, max_length=1000)]
MAX_DUTY_HOURS = 24 * 31  # one period at most a month


class StaffIn(InputModel):
    """A spot-check inspector: county staff cover a county, prefecture staff a prefecture, province staff all."""

    model_config = ConfigDict(str_strip_whitespace=True)
    name: PersonName
    phone: Annotated[str, Field(pattern=r"^(1\d{10}|0\d{2,3}-?\d{7,8})$", description="mobile or landline")]
    level: Literal["county", "prefecture", "province"]
    region_code: Annotated[str, Field(pattern=r"^53\d{4}$", description="county, prefecture, or 530000")]


class DutyIn(InputModel):
    """One on-duty period (times with their zone; stored in UTC)."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> DutyIn:
        if not datetime(2000, 1, 1, tzinfo=UTC) <= self.starts_at < self.ends_at <= datetime(2100, 1, 1, tzinfo=UTC):
            raise ValueError("值班时段须在 2000–2100 年之间，且结束晚于开始")
        if (self.ends_at - self.starts_at).total_seconds() > MAX_DUTY_HOURS * 3600:
            raise ValueError(f"一个值班时段不得超过 {MAX_DUTY_HOURS} 小时")
        return self


class TieIn(InputModel):
    """A declared tie to a training institution (clause 十六), which recuses the inspector from it."""

    model_config = ConfigDict(str_strip_whitespace=True)
    institution_id: RecordId
    relation: Literal["self", "spouse", "child", "child_spouse"]
    note: Annotated[str, Field(max_length=500)] | None = None


class SignInLinkIn(InputModel):
    """How long a one-time sign-in link stays valid (default: the center's setting)."""

    valid_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] | None = None


class SignInIn(InputModel):
    """The code of a one-time sign-in link (the part after `#signin=`)."""

    code: Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class DispatchIn(InputModel):
    """An operator sends the alert: to an inspector they chose, or to the one the router draws."""

    model_config = ConfigDict(str_strip_whitespace=True)
    staff_id: RecordId | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None


class NoteIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    note: Note


class CloseIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    outcome: Literal["violation_confirmed", "false_alarm", "could_not_verify"]
    note: Note


class CallIn(InputModel):
    """One call of a phone check."""

    model_config = ConfigDict(str_strip_whitespace=True)
    trainee_id: RecordId
    reached: StrictBool
    present: StrictBool | None = Field(default=None, description="the trainee confirmed being in class")
    answers: Annotated[str, Field(max_length=2000)] | None = None
    started_at: AwareDatetime = Field(description="when the page opened the tel: link (the page's clock, with zone)")
    ended_at: AwareDatetime = Field(description="when the page was shown again after the call (the page's clock)")
    page_now: AwareDatetime = Field(description="the page's clock when it sent this: the server moves the call's "
                                    "times onto its own clock by the difference")

    @model_validator(mode="after")
    def _present_only_if_reached(self) -> CallIn:
        if not self.reached and self.present is not None:
            raise ValueError("未接通的电话不能记录是否在班")
        return self


class FixIn(InputModel):
    """The inspector's position as the phone measured it when arriving: judged against the venue's fence with the
    same accuracy-aware rule as trainees' fixes (a visit from outside is marked, never refused)."""

    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    accuracy_m: Annotated[float, Field(gt=0, le=5000, allow_inf_nan=False, description="radius, metres")]
    datum: Literal["WGS-84", "GCJ-02", "BD-09"] = "WGS-84"
    captured_at: AwareDatetime = Field(description="when the phone took the fix (with its zone)")

    @model_validator(mode="after")
    def _sane(self) -> FixIn:
        if self.latitude == 0 and self.longitude == 0:
            raise ValueError("定位为 (0,0)，说明手机未取得有效定位")
        if why := outside_service_area(self.latitude, self.longitude):
            raise ValueError(why)
        return self


class ArriveIn(InputModel):
    fix: FixIn | None = Field(default=None, description="the inspector's fix; without one the arrival is recorded "
                              "as unproven (未提供定位)")


class ObjectionIn(InputModel):
    """An institution's objection (异议) to an alert of its class closed against it, with its reason."""

    model_config = ConfigDict(str_strip_whitespace=True)
    alert_id: Annotated[StrictInt, Field(ge=1, le=MAX_UPLOAD_ID, description="the alert objected to")]
    reason: Annotated[str, Field(min_length=1, max_length=2000, description="why the finding is wrong, and on what "
                                 "(at least 20 letters or digits)")]


class ObjectionDecisionIn(InputModel):
    """The center's decision on an objection: upheld (the alert is reopened and re-examined) or rejected."""

    model_config = ConfigDict(str_strip_whitespace=True)
    decision: Literal["upheld", "rejected"]
    note: Annotated[str, Field(min_length=1, max_length=2000, description="what the decision rests on (at least 20 "
                               "letters or digits)")]
