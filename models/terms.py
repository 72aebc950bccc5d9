"""Shared terms written once: subject kinds, upload statuses, live event kinds, and the rule catalogue (zh-CN)."""

from __future__ import annotations

from enum import StrEnum

from models.domain import AnomalyCode, Severity, TraineeCategory


class SubjectKind(StrEnum):
    """What a verification, photo hash or anomaly is about."""

    CHECKIN = "checkin"
    SNAPSHOT = "snapshot"
    HEARTBEAT = "heartbeat"
    FRAME = "frame"  # a liveness burst frame
    ENROLMENT = "enrolment"
    CLOCK = "clock"  # a clock rule's subject (RuleSubject)
    SESSION = "session"  # one session of one day (SessionReview)
    CAMERA = "camera"  # a classroom camera (CAMERA_OFFLINE, FROZEN_FEED)
    CROSSCHECK = "crosscheck"  # one finding of a cross-check against the registers (RuleSubject)
    IDENTITY = "identity"  # a look-alike found at enrolment (IdentityMatch), as the index judged it
    IDENTITY_REVIEW = "id_review"  # the same match as an operator found it: the same person (冒名/多领)


class UploadStatus(StrEnum):
    """Where an upload stands: waiting for the worker, then a final status."""

    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    REVIEW = "review"  # left to an operator


class EventKind(StrEnum):
    """The live feed's event types."""

    VERDICT = "verdict"
    ANOMALY = "anomaly"
    ANOMALY_RESOLVED = "anomaly_resolved"
    CLASS_STATUS = "class_status"
    ALERT = "alert"  # an alert changed state (dispatched, accepted, closed…)
    PAGE = "page"  # an alert sent to one inspector's phone


# The rule catalogue as the pages show it: zh-CN name and the notice's clauses it enforces (DESIGN.md).
RULE_CATALOGUE: dict[AnomalyCode, tuple[str, str]] = {
    AnomalyCode.FACE_MISMATCH: ("人脸不符", "七"),
    AnomalyCode.FACE_MISSING: ("未检测到人脸", "七"),
    AnomalyCode.FACE_MULTIPLE: ("多人同框", "七"),
    AnomalyCode.FACE_POOR: ("人脸质量差", "七"),
    AnomalyCode.OUT_OF_FENCE: ("超出场地围栏", "七"),
    AnomalyCode.PROXY_SIGNIN: ("疑似代签", "八"),
    AnomalyCode.LIVENESS_FAILED: ("活体检测未通过", "七"),
    AnomalyCode.PHOTO_REPLAY: ("照片重复使用", "七"),
    AnomalyCode.GPS_IMPLAUSIBLE: ("定位异常", "七"),
    AnomalyCode.HEADCOUNT_GAP: ("在场人数不符", "七、十四"),
    AnomalyCode.TEACHER_ABSENT: ("教师未到岗", "九"),
    AnomalyCode.TEACHER_MISMATCH: ("非登记教师授课", "九"),
    AnomalyCode.OUTSIDE_SESSION: ("非课时签到", "十四"),
    AnomalyCode.MISSING_SIGNOUT: ("未签退", "十四"),
    AnomalyCode.NO_SHOW: ("缺勤", "十四"),
    AnomalyCode.CLASS_SILENT: ("班次无动态", "七"),
    AnomalyCode.LOW_ATTENDANCE: ("出勤率不足", "十四"),
    AnomalyCode.ONLINE_OVER_8H: ("线上学习超时", "六"),
    AnomalyCode.DOUBLE_ENROLMENT: ("重复参训", "八"),
    AnomalyCode.BLACKLISTED: ("黑名单开班", "九、十九"),
    AnomalyCode.CLASS_NOT_ALLOWED: ("工种不得开班", "四、十三"),
    AnomalyCode.SAME_TEACHER_BOTH: ("理论实操同一教师", "九"),
    AnomalyCode.DUPLICATE_IDENTITY: ("一人多证/冒名", "八"),
    AnomalyCode.VERIFICATION_FAILED: ("无法核验", "十三"),
    AnomalyCode.CAMERA_OFFLINE: ("摄像头离线", "七"),
    AnomalyCode.FROZEN_FEED: ("摄像头画面静止", "七"),
    AnomalyCode.CATEGORY_CONTRADICTED: ("人员类别不符", "八"),
    AnomalyCode.REPEAT_SUBSIDY: ("重复享受补贴", "八"),
    AnomalyCode.TEACHER_NOT_IN_POOL: ("教师不在师资库", "九"),
    AnomalyCode.TEACHER_CHECK_FAILED: ("教师年审未通过", "九"),
    AnomalyCode.VOUCHER_INVALID: ("培训券无效", "八"),
    AnomalyCode.EMPLOYED_ELSEWHERE: ("异地参保在岗", "八"),
}

CATEGORY_LABELS: dict[TraineeCategory, str] = {
    TraineeCategory.UNEMPLOYED: "登记失业人员", TraineeCategory.RURAL: "农村转移就业劳动者",
    TraineeCategory.GRADUATE: "毕业年度高校毕业生", TraineeCategory.EMPLOYEE: "企业职工", TraineeCategory.OTHER: "其他",
}

SEVERITY_LABELS: dict[Severity, str] = {Severity.HIGH: "高", Severity.MEDIUM: "中", Severity.LOW: "低"}

