"""Verification rules for one upload as pure functions: findings with their evidence and thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from models.clock import SHANGHAI
from models.domain import AnomalyCode, FenceResult, Severity
from models.terms import UploadStatus
from models.timefmt import format_duration_zh
from monitor.decisions.faces import (
    FaceMatch,
    FaceQuality,
    Metric,
    Neighbour,
    PhotoShape,
    QualityThresholds,
    explain_photo_defect,
    explain_poor_quality,
)


@dataclass(frozen=True)
class LivenessThresholds:
    """The burst's limits (values in the settings): relative eye-aspect drop, yaw change, pHash bits, face distance."""

    blink_min_ear_drop: float
    turn_min_yaw_change: float
    still_max_phash_distance: int
    face_match: float
    metric: Metric


@dataclass(frozen=True)
class Thresholds:
    """Every limit a verdict depends on, built from the settings (the only place their values are written);
    recorded with each verification and anomaly."""

    face_match: float
    face_mismatch: float
    proxy_face_max: float
    proxy_face_margin: float
    cohort_margin: float
    face_min_side_px: int
    face_min_sharpness: float
    face_min_brightness: float
    replay_phash_max_distance: int
    exif_max_age_s: float
    exif_gps_max_distance_m: float
    gps_max_speed_kmh: float
    gps_max_accuracy_m: float
    uncertain_fixes_per_day: int
    proxy_device_window_s: float
    proxy_device_max_trainees: int
    session_grace_min: int
    two_places_max_min: float
    two_places_min_distance_m: float
    headcount_min_ratio: float
    headcount_min_signed_in: int
    liveness_frame_max_distance: float
    liveness_blink_min_ear_drop: float
    liveness_turn_min_yaw_change: float
    liveness_still_max_phash_distance: int
    # The embedding model the face distances come from: its manifest name, weights' SHA-256 and metric.
    face_engine: str
    face_model_sha256: str
    metric: Metric

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def quality(self) -> QualityThresholds:
        return QualityThresholds(self.face_min_side_px, self.face_min_sharpness, self.face_min_brightness)

    @property
    def liveness(self) -> LivenessThresholds:
        return LivenessThresholds(self.liveness_blink_min_ear_drop, self.liveness_turn_min_yaw_change,
                                  self.liveness_still_max_phash_distance, self.liveness_frame_max_distance,
                                  self.metric)


@dataclass(frozen=True)
class Finding:
    """One rule that fired: code, severity, zh-CN explanation, measured evidence and thresholds."""

    code: AnomalyCode
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def as_reason(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class Review:
    """A case the machine leaves to an operator (not an anomaly)."""

    code: str
    message: str
    measured: dict[str, Any]
    thresholds: dict[str, Any]


@dataclass(frozen=True)
class PriorCheckIn:
    """What the rules need to know of an earlier check-in."""

    checkin_id: int
    trainee_id: int
    captured_at: datetime
    lat: float
    lon: float
    device_id: str


def merge_findings(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per code (anomalies are unique per rule and upload): messages and evidence combined."""
    merged: dict[AnomalyCode, Finding] = {}
    for f in findings:
        if f.code in merged:
            m = merged[f.code]
            merged[f.code] = Finding(f.code, max(m.severity, f.severity, key=lambda s: s.rank),
                                     f"{m.message}；{f.message}", {**m.evidence, **f.evidence},
                                     {**m.thresholds, **f.thresholds})
        else:
            merged[f.code] = f
    return list(merged.values())



def face_limits(t: Thresholds) -> dict[str, float | str]:
    """The face thresholds a face verdict depends on, as recorded with it."""
    return {"face_match_threshold": t.face_match, "face_mismatch_threshold": t.face_mismatch,
            "proxy_face_max_distance": t.proxy_face_max, "proxy_face_margin": t.proxy_face_margin,
            "cohort_margin": t.cohort_margin, "face_engine": t.face_engine, "face_model_sha256": t.face_model_sha256,
            "face_metric": t.metric}


def judge_checkin_face(
    face_count: int, quality: FaceQuality | None, match: FaceMatch | None, t: Thresholds,
    others: Sequence[Neighbour] = (), photo: PhotoShape | None = None, photo_name: str = "签到照片",
) -> tuple[list[Finding], Review | None]:
    """FACE_MISSING, FACE_MULTIPLE, FACE_POOR, FACE_MISMATCH or PROXY_SIGNIN; doubtful faces become a review.

    `others` are the class's other trainees ranked by their evidence's distance to this face. The face
    passes only when it is within `face_match` of the trainee's templates and no classmate's evidence is
    nearer. It is a proxy (代签) only when it is clearly a classmate's: that classmate's median distance is
    `proxy_face_margin` below the trainee's own and within `proxy_face_max` (within `face_match` when the
    face is already a mismatch). A classmate nearer by median, or a distance between `face_match` and
    `face_mismatch`, goes to an operator: never a silent pass, never an accusation. `photo_name` names the photo in
    messages (zh-CN).
    """
    short_px = photo.short_side_px if photo is not None else None
    if face_count == 0 and short_px is not None and short_px < 2 * t.quality.min_side_px:
        # too few pixels to hold a face that could be judged: not evidence that nobody was there (FACE_MISSING), but
        # nobody can be seen either, so as serious as an empty seat (a tiny photo must not lower the attention)
        return [Finding(AnomalyCode.FACE_POOR, Severity.MEDIUM,
                        f"照片分辨率过低（短边 {short_px} 像素，至少 {2 * t.quality.min_side_px} 像素），"
                        "无法辨认人脸，请重新拍摄", {"face_count": 0, "photo_short_side_px": short_px},
                        {"min_photo_short_side_px": 2 * t.quality.min_side_px})], None
    if photo is not None and (defect := explain_photo_defect(photo, face_count)):
        # a file cut short, or a picture no camera took: a retake, not evidence of absence or of another face; a cut
        # that leaves no face is as serious as an empty seat (grey lines padded onto a photo of nobody gain nothing)
        message, defect_measured, defect_limits = defect
        return [Finding(AnomalyCode.FACE_POOR, Severity.MEDIUM if face_count == 0 else Severity.LOW, message,
                        {"face_count": face_count, **defect_measured}, defect_limits)], None
    if face_count == 0:
        return [Finding(AnomalyCode.FACE_MISSING, Severity.MEDIUM, f"{photo_name}中未检测到人脸",
                        {"face_count": 0})], None
    if face_count > 1:
        return [Finding(AnomalyCode.FACE_MULTIPLE, Severity.MEDIUM,
                        f"{photo_name}中检测到 {face_count} 张人脸，只能有学员本人", {"face_count": face_count})], None
    if quality is not None and (poor := explain_poor_quality(quality, t.quality)):
        message, poor_measured, poor_limits = poor
        return [Finding(AnomalyCode.FACE_POOR, Severity.LOW, f"人脸质量不足以核验：{message}", poor_measured,
                        poor_limits)], None
    if match is None:
        # Enrolled, but not with the model in use (a switch of model before `monitor faces re-enrol` reached this
        # trainee): nothing to compare with, and old and new vectors are never compared.
        return [], Review("FACE_NOT_ENROLLED", f"学员尚无当前人脸模型（{t.face_engine}）的登记模板，"
                                               "需重新登记或人工复核", {"face_count": 1}, face_limits(t))
    d = match.distance
    limits = face_limits(t)
    measured: dict[str, Any] = {"face_distance": round(d, 4), "template_index": match.template_index}
    top = others[0] if others else None
    if top is not None:
        measured |= {"nearest_other_trainee_id": top.person_id, "nearest_other_distance": round(top.distance, 4),
                     "nearest_other_min_distance": round(top.nearest, 4)}
    findings: list[Finding] = []
    if d > t.face_mismatch:
        findings.append(Finding(AnomalyCode.FACE_MISMATCH, Severity.HIGH,
                                f"人脸与登记照片不符（相似距离 {d:.2f}，阈值 {t.face_mismatch:.2f}）",
                                measured, limits))
    if top is not None and d - top.distance >= t.proxy_face_margin and d > t.face_match and (
            top.distance <= t.proxy_face_max or (findings and top.distance <= t.face_match)):
        findings.append(Finding(
            AnomalyCode.PROXY_SIGNIN, Severity.HIGH,
            f"照片中的人脸是本班另一名学员（编号 {top.person_id}，相似距离 {top.distance:.2f}），"
            f"而非签到学员本人（{d:.2f}），疑似代签",
            measured | {"other_trainee_id": top.person_id, "other_checkin_ids": list(top.checkin_ids)}, limits))
    if findings:
        return findings, None
    # The class cohort: the trainee must be the nearest of the roster by `cohort_margin` (median distance to each
    # classmate's evidence, so one look-alike photo is not enough).
    nearer = [o for o in others if o.distance < d + t.cohort_margin]
    if d <= t.face_match and not nearer:
        return [], None
    if nearer:
        who = nearer[0]
        closer = "更接近" if who.distance < d else "几乎同样接近"
        return [], Review("FACE_AMBIGUOUS",
                          f"人脸与签到学员的相似距离 {d:.2f}，但与本班学员（编号 {who.person_id}）{closer}"
                          f"（{who.distance:.2f}），需人工复核是否代签",
                          measured | {"closer_trainee_ids": [o.person_id for o in nearer[:5]]}, limits)
    return [], Review("FACE_GREY_ZONE", f"人脸相似距离 {d:.2f} 处于复核区间（{t.face_match:.2f}–"
                                        f"{t.face_mismatch:.2f}），需人工复核", measured, limits)


HEARTBEAT_ALERTED = frozenset({AnomalyCode.PHOTO_REPLAY, AnomalyCode.FACE_MISMATCH})
"""What a failed heartbeat raises as an anomaly: someone else, or a replayed picture, studying in the trainee's name
(as an operator's rejection of a doubtful one does). No face, several, or one that cannot be judged only leaves the
stretch uncounted, and the trainee is told why."""


def judge_heartbeat(face_count: int, quality: FaceQuality | None, match: FaceMatch | None, t: Thresholds,
                    photo: PhotoShape | None = None, replay: Sequence[Finding] = ()
                    ) -> tuple[UploadStatus, list[Finding], Review | None]:
    """An online-study heartbeat: its face judged as a check-in's without classmates, and `replay` (judge_replay: a
    stale EXIF time; not near copies, which a fixed webcam's honest frames are). Failed with its findings (a replay,
    no single face, a photo or face that cannot be judged, beyond `face_mismatch`), passed within `face_match`, and
    between the two — or with no template of the model in use — left to an operator (status `review`, not counted
    until confirmed)."""
    findings, review = judge_checkin_face(face_count, quality, match, t, photo=photo, photo_name="学习抽拍照片")
    findings = merge_findings([*replay, *findings])
    if findings:
        return UploadStatus.FAILED, findings, None
    if review is not None:
        return UploadStatus.REVIEW, [], replace(review, message=f"在线学习抽拍：{review.message}；复核确认前不计入学时")
    return UploadStatus.PASSED, [], None


def judge_fence(result: FenceResult, signed_distance_m: float, accuracy_m: float,
                uncertain_today: int, t: Thresholds) -> list[Finding]:
    """OUT_OF_FENCE when the fix's whole accuracy circle lies outside, or it was uncertain too often today."""
    if result is FenceResult.OUTSIDE:
        return [Finding(AnomalyCode.OUT_OF_FENCE, Severity.HIGH,
                        f"定位位于培训场地围栏外约 {signed_distance_m:,.0f} 米（定位精度 {accuracy_m:.0f} 米）",
                        {"outside_by_m": round(signed_distance_m, 1), "accuracy_m": accuracy_m})]
    if result is FenceResult.UNCERTAIN and uncertain_today >= t.uncertain_fixes_per_day:
        return [Finding(AnomalyCode.OUT_OF_FENCE, Severity.MEDIUM,
                        f"今日第 {uncertain_today} 次定位处于围栏边缘、无法确认在场",
                        {"uncertain_fixes_today": uncertain_today, "outside_by_m": round(signed_distance_m, 1)},
                        {"uncertain_fixes_per_day": t.uncertain_fixes_per_day})]
    return []


def judge_gps(mock_location: bool, accuracy_m: float, fix: tuple[float, float], captured_at: datetime,
              previous: PriorCheckIn | None, previous_distance_m: float | None,
              same_coordinates_other_devices: Sequence[int], t: Thresholds) -> list[Finding]:
    """GPS_IMPLAUSIBLE: mock location, (0,0), poor accuracy, impossible speed, copied coordinates."""
    out: list[Finding] = []
    if mock_location:
        out.append(Finding(AnomalyCode.GPS_IMPLAUSIBLE, Severity.HIGH, "手机报告使用了模拟定位",
                           {"mock_location": True}))
    if fix == (0.0, 0.0):
        out.append(Finding(AnomalyCode.GPS_IMPLAUSIBLE, Severity.HIGH, "定位为 (0,0)", {"lat": 0.0, "lon": 0.0}))
    if accuracy_m > t.gps_max_accuracy_m:
        out.append(Finding(AnomalyCode.GPS_IMPLAUSIBLE, Severity.LOW,
                           f"定位精度 {accuracy_m:.0f} 米过差（上限 {t.gps_max_accuracy_m:.0f} 米）",
                           {"accuracy_m": accuracy_m}, {"gps_max_accuracy_m": t.gps_max_accuracy_m}))
    if previous is not None and previous_distance_m is not None:
        seconds = max((captured_at - previous.captured_at).total_seconds(), 1.0)
        speed_kmh = previous_distance_m / seconds * 3.6
        if speed_kmh > t.gps_max_speed_kmh and previous_distance_m > 1000:
            out.append(Finding(AnomalyCode.GPS_IMPLAUSIBLE, Severity.HIGH,
                               f"与上次签到相距 {previous_distance_m / 1000:.1f} 公里、间隔 {seconds / 60:.0f} 分钟，"
                               f"折合 {speed_kmh:.0f} 公里/小时，不可能到达",
                               {"speed_kmh": round(speed_kmh, 1), "distance_m": round(previous_distance_m),
                                "seconds": seconds, "previous_checkin_id": previous.checkin_id},
                               {"gps_max_speed_kmh": t.gps_max_speed_kmh}))
    if same_coordinates_other_devices:
        out.append(Finding(AnomalyCode.GPS_IMPLAUSIBLE, Severity.HIGH,
                           f"坐标与其他设备的签到完全相同（{len(same_coordinates_other_devices)} 次），疑似伪造定位",
                           {"same_coordinates_checkin_ids": list(same_coordinates_other_devices)}))
    return merge_findings(out)


def judge_replay(near_copies: Sequence[tuple[str, int, int]], exif_time: datetime | None, received_at: datetime,
                 exif_gps: tuple[float, float] | None, exif_gps_distance_m: float | None,
                 t: Thresholds) -> list[Finding]:
    """PHOTO_REPLAY: a near copy of an earlier photo, a stale EXIF capture time, EXIF GPS far from the fix.

    `near_copies` are (subject kind, subject id, Hamming distance) of earlier photos.
    """
    out: list[Finding] = []
    if near_copies:
        kind, subject_id, distance = min(near_copies, key=lambda c: c[2])
        what = {"checkin": "签到", "snapshot": "课堂抓拍", "enrolment": "人脸登记", "frame": "活体连拍",
                "heartbeat": "在线学习抽拍"}.get(kind, "其他")
        out.append(Finding(AnomalyCode.PHOTO_REPLAY, Severity.HIGH,
                           f"照片与此前的{what}照片（编号 {subject_id}）几乎相同（差异 {distance} 位）",
                           {"near_copies": [{"kind": k, "id": i, "distance": d} for k, i, d in near_copies[:10]]},
                           {"replay_phash_max_distance": t.replay_phash_max_distance}))
    if exif_time is not None:
        age = abs((received_at - exif_time).total_seconds())
        if age > t.exif_max_age_s:
            out.append(Finding(AnomalyCode.PHOTO_REPLAY, Severity.HIGH,
                               f"照片拍摄时间（EXIF {exif_time.astimezone(SHANGHAI):%Y-%m-%d %H:%M}，北京时间）"
                               f"与上传时间相差 "
                               f"{format_duration_zh(age)}",
                               {"exif_time": exif_time.isoformat(), "exif_age_s": round(age)},
                               {"exif_max_age_s": t.exif_max_age_s}))
    if exif_gps is not None and exif_gps_distance_m is not None and exif_gps_distance_m > t.exif_gps_max_distance_m:
        out.append(Finding(AnomalyCode.PHOTO_REPLAY, Severity.MEDIUM,
                           f"照片 EXIF 中的位置与上报定位相距 {exif_gps_distance_m / 1000:.1f} 公里",
                           {"exif_gps": list(exif_gps), "exif_gps_distance_m": round(exif_gps_distance_m)},
                           {"exif_gps_max_distance_m": t.exif_gps_max_distance_m}))
    return merge_findings(out)


def judge_proxy(trainee_id: int, device_recent: Sequence[PriorCheckIn], t: Thresholds) -> list[Finding]:
    """PROXY_SIGNIN (代签) by device: this device signed in too many different trainees within the window.

    The face side of 代签 is judged with the face (`judge_checkin_face`), against the class's evidence.
    """
    others = {p.trainee_id: p.checkin_id for p in device_recent if p.trainee_id != trainee_id}
    if len(others) + 1 < t.proxy_device_max_trainees:
        return []
    return [Finding(AnomalyCode.PROXY_SIGNIN, Severity.MEDIUM,
                    f"同一设备 {t.proxy_device_window_s / 60:.0f} 分钟内为 {len(others) + 1} 名不同学员签到，疑似代签",
                    {"device_checkin_ids": sorted(others.values()), "distinct_trainees": len(others) + 1},
                    {"proxy_device_window_s": t.proxy_device_window_s,
                     "proxy_device_max_trainees": t.proxy_device_max_trainees})]


def judge_snapshot_faces(face_count: int) -> list[Finding]:
    """A classroom snapshot in which nobody can be seen."""
    if face_count > 0:
        return []
    return [Finding(AnomalyCode.FACE_MISSING, Severity.MEDIUM, "课堂抓拍中未检测到任何人脸", {"face_count": 0})]
