"""Pure decisions tested with plain values: ID numbers, datums, fences, face matching, sessions, inputs."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from ingest.acceptance import pick_session
from ingest.checks.validation import check_capture_time, check_fix, parse_client_time
from models.domain import Datum, FenceResult
from models.errors import ApiError
from models.identity import compute_check_char, explain_id_number_problem, mask_id_number, mask_name
from models.scope import region_prefix
from models.tables import ClassSession
from monitor.adapters.face_models import load_manifest
from monitor.adapters.tokens import hash_token
from monitor.decisions.calibration import calibrate, error_curve, pair_distances
from monitor.decisions.faces import (
    CUT_SHORT_MIN_SHARE,
    DECODER_FILL_GREY,
    FaceMatch,
    FaceQuality,
    Neighbour,
    PhotoShape,
    contender_order,
    explain_enrolment_problem,
    match_face,
    measure_filled_share,
    rank_other_people,
)
from monitor.decisions.geodesy import (
    bd09_to_gcj02,
    circle_signed_distance_m,
    classify_fix,
    convert_from_wgs84,
    convert_to_wgs84,
    distance_m,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    polygon_signed_distance_m,
    wgs84_to_gcj02,
)
from monitor.decisions.schedule import class_status_at
from monitor.decisions.verdicts import (
    HEARTBEAT_ALERTED,
    Thresholds,
    judge_checkin_face,
    judge_fence,
    judge_heartbeat,
    judge_replay,
)
from monitor.settings import Settings


# -- ID numbers (GB 11643) -------------------------------------------------------------------
def test_check_digit_of_the_standard_example() -> None:
    # The worked example of GB 11643-1999: 11010519491231002X.
    assert compute_check_char("11010519491231002") == "X"
    assert explain_id_number_problem("11010519491231002X") is None
    assert explain_id_number_problem("11010519491231002x") is None
    assert "校验位" in explain_id_number_problem("110105194912310021")


def test_masking() -> None:
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_name("欧建国") == "欧**"


# -- datums: reference values of the widely used coordtransform implementation -----------------
@pytest.mark.parametrize(("fn", "given", "expected"), [
    (wgs84_to_gcj02, (39.915, 116.404), (39.91640428150164, 116.41024449916938)),
    (gcj02_to_bd09, (39.915, 116.404), (39.92133699351021, 116.41036949371029)),
    (bd09_to_gcj02, (39.915, 116.404), (39.90865673957631, 116.39762729119315)),
])
def test_datum_conversions_match_published_values(fn, given, expected) -> None:
    lat, lon = fn(*given)
    assert lat == pytest.approx(expected[0], abs=1e-9) and lon == pytest.approx(expected[1], abs=1e-9)


def test_gcj02_inverse_is_exact_to_centimetres() -> None:
    # coordtransform's one-step inverse gives (39.91359571849836, 116.39775550083061); ours iterates.
    lat, lon = gcj02_to_wgs84(39.915, 116.404)
    assert distance_m((lat, lon), (39.91359571849836, 116.39775550083061)) < 2.0
    assert distance_m(wgs84_to_gcj02(lat, lon), (39.915, 116.404)) < 0.01


@pytest.mark.parametrize("datum", list(Datum))
def test_round_trip_through_every_datum(datum: Datum) -> None:
    kunming = (25.0433, 102.7058)
    assert distance_m(convert_to_wgs84(*convert_from_wgs84(*kunming, datum), datum), kunming) < 0.2


def test_no_offset_outside_china() -> None:
    assert wgs84_to_gcj02(48.8566, 2.3522) == (48.8566, 2.3522)


# -- fences --------------------------------------------------------------------------------
def test_circle_and_polygon_signed_distances() -> None:
    centre = (25.0433, 102.7058)
    assert circle_signed_distance_m(centre, centre, 100) == pytest.approx(-100)
    north_200 = (centre[0] + 200 / 110_790, centre[1])
    assert circle_signed_distance_m(north_200, centre, 100) == pytest.approx(100, abs=1.0)
    square = [(25.0420, 102.7040), (25.0420, 102.7075), (25.0445, 102.7075), (25.0445, 102.7040)]
    assert polygon_signed_distance_m((25.0432, 102.7057), square) < -100
    east = (25.0432, 102.7075 + 300 / (111_320 * 0.9060))
    assert polygon_signed_distance_m(east, square) == pytest.approx(300, rel=0.01)


@pytest.mark.parametrize(("signed", "accuracy", "expected"), [
    (-100, 20, FenceResult.INSIDE), (-20, 20, FenceResult.INSIDE), (-10, 20, FenceResult.UNCERTAIN),
    (15, 20, FenceResult.UNCERTAIN), (20, 20, FenceResult.UNCERTAIN), (20.1, 20, FenceResult.OUTSIDE),
    (4850, 15, FenceResult.OUTSIDE),
])
def test_fence_classification_accounts_for_accuracy(signed: float, accuracy: float, expected: FenceResult) -> None:
    assert classify_fix(signed, accuracy) is expected


def test_only_outside_fixes_are_alarmed() -> None:
    t = Settings().thresholds()
    assert judge_fence(FenceResult.UNCERTAIN, 5, 20, uncertain_today=1, t=t) == []
    [finding] = judge_fence(FenceResult.OUTSIDE, 4850, 15, uncertain_today=0, t=t)
    assert finding.code.value == "OUT_OF_FENCE" and finding.evidence["outside_by_m"] == 4850


# -- faces ---------------------------------------------------------------------------------
def test_match_takes_the_nearest_template_and_honours_the_threshold() -> None:
    probe = [0.0] * 128
    far, near = [0.1] * 128, [0.0] * 127 + [0.59]
    m = match_face(probe, [far, near], 0.6, "euclidean")
    assert m.template_index == 1 and m.distance == pytest.approx(0.59) and m.matched
    assert not match_face(probe, [[0.0] * 127 + [0.61]], 0.6, "euclidean").matched
    assert match_face(probe, [[0.0] * 127 + [0.6]], 0.6, "euclidean").matched  # the boundary counts as a match


DLIB = Settings().thresholds(load_manifest("dlib-resnet"))
ARCFACE = Settings().thresholds(load_manifest("faceplugin-arcface"))


def test_face_findings() -> None:
    t = DLIB
    assert judge_checkin_face(0, None, None, t)[0][0].code.value == "FACE_MISSING"
    # too few pixels to hold a judgeable face (the short side under twice the smallest face): poor, not missing
    enough = 2 * t.quality.min_side_px
    assert judge_checkin_face(0, None, None, t, (), PhotoShape(enough))[0][0].code.value == "FACE_MISSING"
    [tiny], _ = judge_checkin_face(0, None, None, t, (), PhotoShape(enough - 1))
    assert tiny.code.value == "FACE_POOR" and tiny.severity.value == "medium"  # nobody seen: as an empty seat
    assert judge_checkin_face(3, None, None, t)[0][0].code.value == "FACE_MULTIPLE"
    [mismatch], review = judge_checkin_face(1, None, match_face([0.0] * 128, [[0.07] * 128], 0.6, "euclidean"), t)
    assert mismatch.code.value == "FACE_MISMATCH" and review is None
    assert mismatch.thresholds == {"face_match_threshold": 0.40, "face_mismatch_threshold": 0.64,
                                   "proxy_face_max_distance": 0.34, "proxy_face_margin": 0.12, "cohort_margin": 0.0,
                                   "face_engine": "dlib-resnet", "face_metric": "euclidean",
                                   "face_model_sha256": load_manifest("dlib-resnet").source.sha256}
    assert judge_checkin_face(1, None, None, ARCFACE)[1].code == "FACE_NOT_ENROLLED"  # no template of this model


def test_a_photo_cut_short_or_of_a_few_colours_is_poor_not_missing_or_mismatched() -> None:
    """A JPEG cut short with an end marker appended decodes mid-grey below the cut: with no face left it is a retake
    (FACE_POOR), not evidence that nobody was there. A dithered black-and-white picture's face is no camera's: a
    retake, not FACE_MISMATCH. A blank frame stays FACE_MISSING, a face in the intact part is judged as any face."""
    t = DLIB
    cut = PhotoShape(3000, None, 0.4)
    [poor], _ = judge_checkin_face(0, None, None, t, (), cut)
    assert poor.code.value == "FACE_POOR" and "不完整" in poor.message and "40%" in poor.message
    # as serious as FACE_MISSING: grey lines padded onto a photo of nobody must not lower the attention it gets
    assert poor.severity == judge_checkin_face(0, None, None, t)[0][0].severity
    assert poor.evidence["filled_share"] == 0.4 and poor.thresholds == {"cut_short_min_share": CUT_SHORT_MIN_SHARE}
    nearly_whole = PhotoShape(3000, None, CUT_SHORT_MIN_SHARE - 0.01)
    assert judge_checkin_face(0, None, None, t, (), nearly_whole)[0][0].code.value == "FACE_MISSING"
    assert judge_checkin_face(1, None, None, t, (), cut)[1].code == "FACE_NOT_ENROLLED"  # a face left: judged on
    far = match_face([0.0] * 128, [[0.07] * 128], 0.6, "euclidean")
    [bitonal], _ = judge_checkin_face(1, None, far, t, (), PhotoShape(3000, 2))
    assert bitonal.code.value == "FACE_POOR" and "2 种颜色" in bitonal.message and bitonal.severity.value == "low"
    assert judge_checkin_face(1, None, far, t, (), PhotoShape(3000, None))[0][0].code.value == "FACE_MISMATCH"
    assert judge_checkin_face(0, None, None, t, (), PhotoShape(3000, 1))[0][0].code.value == "FACE_MISSING"  # blank


def test_filled_share_counts_whole_mid_grey_lines_from_any_edge() -> None:
    photo = np.random.default_rng(1).integers(0, 256, (100, 80), dtype=np.uint8)
    photo[photo == DECODER_FILL_GREY] = 127  # no line of the photo itself is fill
    assert measure_filled_share(photo) == 0.0
    cut = photo.copy()
    cut[70:, :] = DECODER_FILL_GREY
    cut[69, 40:] = DECODER_FILL_GREY  # the cut falls inside a line: that line is not whole fill
    assert measure_filled_share(cut) == 0.3
    assert measure_filled_share(np.rot90(cut)) == 0.3  # turned by its EXIF orientation: the fill is at a side
    assert measure_filled_share(cut[::-1]) == 0.3
    assert measure_filled_share(np.full((50, 50), DECODER_FILL_GREY, dtype=np.uint8)) == 0.0  # a blank, not a cut
    assert measure_filled_share(np.zeros((0, 0), dtype=np.uint8)) == 0.0


def test_enrolment_problems() -> None:
    assert explain_enrolment_problem([], 60) == "照片中未检测到人脸"
    assert "2 张" in explain_enrolment_problem([(0, 100, 100, 0), (0, 300, 100, 200)], 60)
    assert "59 像素" in explain_enrolment_problem([(0, 59, 80, 0)], 60)
    assert explain_enrolment_problem([(0, 60, 60, 0)], 60) is None


# -- sessions and class status -------------------------------------------------------------
def session(name: str, start: str, end: str) -> ClassSession:
    return ClassSession(name=name, start_local=start, end_local=end)


def test_pick_session() -> None:
    am, pm = session("上午", "08:30", "12:00"), session("下午", "14:00", "17:30")
    assert pick_session("09:00", [am, pm]) is am
    assert pick_session("12:40", [am, pm]) is am
    assert pick_session("13:30", [am, pm]) is pm
    assert pick_session("09:00", []) is None


def test_class_status_at() -> None:
    sessions = [("08:30", "12:00"), ("14:00", "17:30")]
    start, end = date(2026, 11, 1), date(2026, 11, 30)
    at = lambda d, t: datetime.fromisoformat(f"{d}T{t}")  # noqa: E731
    assert class_status_at(at("2026-10-31", "09:00"), start, end, sessions) == "scheduled"
    assert class_status_at(at("2026-11-02", "09:00"), start, end, sessions) == "in_session"
    assert class_status_at(at("2026-11-02", "12:00"), start, end, sessions) == "between"
    assert class_status_at(at("2026-12-01", "09:00"), start, end, sessions) == "finished"


# -- upload fields -------------------------------------------------------------------------
def test_capture_time_window() -> None:
    now = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    check_capture_time(now - timedelta(hours=23), now, 300, 86400)
    check_capture_time(now + timedelta(seconds=299), now, 300, 86400)
    with pytest.raises(ApiError) as exc:
        check_capture_time(now + timedelta(seconds=301), now, 300, 86400)
    assert exc.value.code == "CAPTURED_AT_IN_FUTURE"


def test_times_without_offset_are_beijing_time() -> None:
    assert parse_client_time("2026-11-29T10:00:00") == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert parse_client_time("2026-11-29T02:00:00Z") == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def test_fix_checks() -> None:
    for lat, lon in ((25.0, 102.7), (21.17, 101.3), (29.2, 99.0), (18.25, 109.5), (53.3, 122.3)):  # Yunnan's corners,
        check_fix(lat, lon, 10, 5000)  # Sanya, Mohe: anywhere in China is a place

    for lat, lon, acc, code in ((90.5, 0.1, 5, "INVALID_COORDINATES"), (float("nan"), 1, 5, "INVALID_COORDINATES"),
                                (0.0, 0.0, 5, "NULL_ISLAND"), (25, 102, 0, "INVALID_ACCURACY"),
                                (40.71, -74.0, 10, "OUTSIDE_SERVICE_AREA"), (51.5, -0.12, 10, "OUTSIDE_SERVICE_AREA"),
                                (-25.0, 102.7, 10, "OUTSIDE_SERVICE_AREA")):
        with pytest.raises(ApiError) as exc:
            check_fix(lat, lon, acc, 5000)
        assert exc.value.code == code


def test_tokens_and_regions() -> None:
    assert hash_token("a") != hash_token("b") and len(hash_token("a")) == 64
    assert region_prefix("530000") == "53" and region_prefix("530100") == "5301"
    assert region_prefix("530102") == "530102"


# -- face identity within a class, contenders, calibration -----------------------------------------------
def _neighbour(person_id: int, median: float, nearest: float | None = None) -> Neighbour:
    return Neighbour(person_id=person_id, distance=median, nearest=median if nearest is None else nearest,
                     evidence_count=2)


def _judge(own: float, others: list[Neighbour], t: Thresholds = DLIB) -> tuple[list[str], str | None]:
    match = FaceMatch(distance=own, threshold=t.face_match, matched=own <= t.face_match, template_index=0)
    findings, review = judge_checkin_face(1, None, match, t, others)
    return [f.code.value for f in findings], review.code if review else None


@pytest.mark.parametrize(("own", "others", "expected"), [
    (0.35, [], ([], None)),                                       # own face, nobody else near
    (0.35, [_neighbour(2, 0.55)], ([], None)),
    (0.40, [_neighbour(2, 0.41)], ([], None)),                    # the boundary passes
    (0.38, [_neighbour(2, 0.37, nearest=0.30)], ([], "FACE_AMBIGUOUS")),  # a classmate is nearer
    (0.38, [_neighbour(2, 0.45, nearest=0.37)], ([], None)),      # one look-alike photo of him is not
    (0.47, [], ([], "FACE_GREY_ZONE")),
    (0.47, [_neighbour(2, 0.36)], ([], "FACE_AMBIGUOUS")),        # nearer classmate, but not clearly his
    (0.47, [_neighbour(2, 0.34)], (["PROXY_SIGNIN"], None)),      # clearly the classmate's face
    (0.45, [_neighbour(2, 0.34)], ([], "FACE_AMBIGUOUS")),        # margin 0.11 < 0.12: not an accusation
    (0.80, [], (["FACE_MISMATCH"], None)),
    (0.80, [_neighbour(2, 0.39)], (["FACE_MISMATCH", "PROXY_SIGNIN"], None)),
    (0.80, [_neighbour(2, 0.45)], (["FACE_MISMATCH"], None)),     # a look-alike is named by nobody
])
def test_face_identity_against_the_class(own: float, others: list[Neighbour],
                                         expected: tuple[list[str], str | None]) -> None:
    assert _judge(own, others) == expected


@pytest.mark.parametrize(("own", "others", "expected"), [
    (0.35, [], ([], None)),
    (0.60, [_neighbour(2, 0.64)], ([], None)),                    # the boundary passes, the roster 0.04 farther
    (0.61, [], ([], "FACE_GREY_ZONE")),
    (0.35, [_neighbour(2, 0.37)], ([], "FACE_AMBIGUOUS")),        # the cohort: nearest of the roster by 0.03
    (0.35, [_neighbour(2, 0.38)], ([], None)),
    (0.35, [_neighbour(2, 0.37, nearest=0.20), _neighbour(3, 0.90)], ([], "FACE_AMBIGUOUS")),
    (0.80, [], ([], "FACE_GREY_ZONE")),
    (0.81, [], (["FACE_MISMATCH"], None)),
    (0.67, [_neighbour(2, 0.56)], (["PROXY_SIGNIN"], None)),      # a classmate's face: within 0.56, 0.11 nearer
    (0.65, [_neighbour(2, 0.56)], ([], "FACE_AMBIGUOUS")),        # margin 0.09: not an accusation
    (0.67, [_neighbour(2, 0.57)], ([], "FACE_AMBIGUOUS")),        # beyond the one-to-many limit
    (0.95, [_neighbour(2, 0.30)], (["FACE_MISMATCH", "PROXY_SIGNIN"], None)),
    (0.95, [_neighbour(2, 0.62)], (["FACE_MISMATCH"], None)),     # mismatch: a classmate within the 1:1 pass is named
    (0.95, [_neighbour(2, 0.59)], (["FACE_MISMATCH", "PROXY_SIGNIN"], None)),
])
def test_the_arcface_cohort_rule(own: float, others: list[Neighbour], expected: tuple[list[str], str | None]) -> None:
    """The stronger model's decisions (cosine distance): pass at 0.60 only as the roster's nearest by 0.03;
    PROXY_SIGNIN when a classmate is within 0.56 and 0.10 nearer; FACE_MISMATCH beyond 0.80."""
    assert _judge(own, others, ARCFACE) == expected


def test_classmates_are_ranked_by_median_distance() -> None:
    probe = [0.0] * 128
    at = lambda d: [d] + [0.0] * 127  # noqa: E731
    ranked = rank_other_people(probe, {7: [(at(0.2), None), (at(0.6), 11), (at(0.7), 12)], 8: [(at(0.4), None)]},
                               "euclidean")
    assert [n.person_id for n in ranked] == [8, 7]  # one look-alike photo of 7 does not make 7 the nearest
    assert ranked[1].nearest == pytest.approx(0.2) and ranked[1].distance == pytest.approx(0.6)
    assert ranked[1].checkin_ids == (11, 12)


def test_small_background_faces_are_not_contenders() -> None:
    assert contender_order([223, 43], [1.87, 1.04]) == [0]          # a poster behind the trainee
    assert contender_order([43, 223], [1.04, 1.87]) == [1]          # largest first, whatever the order
    assert contender_order([155, 155, 43], [1.6, 1.4, -0.1]) == [0, 1]  # two people side by side
    assert contender_order([108, 89, 90], [1.6, 1.5, 0.4]) == [0, 2, 1]
    assert contender_order([200, 80], [2.0, 1.2]) == [0, 1]        # smaller but clearly detected
    assert contender_order([], []) == []


def test_calibration_thresholds_meet_their_targets() -> None:
    rng = np.random.default_rng(3)
    genuine = np.sort(rng.normal(0.38, 0.07, 2000))
    impostor = np.sort(rng.normal(0.64, 0.09, 20000))
    cal = calibrate(genuine, impostor, target_fmr=0.001, target_fnmr=0.001, class_size=60)
    [at] = error_curve(genuine, impostor, [cal.face_match])
    assert at.fmr <= 0.001 and error_curve(genuine, impostor, [cal.face_match + 0.01])[0].fmr > 0.001
    assert (genuine > cal.face_mismatch).mean() <= 0.001
    assert cal.proxy_face_max < cal.face_match < cal.face_mismatch
    people = {"a": [[0.0] * 128, [0.1] + [0.0] * 127], "b": [[1.0] + [0.0] * 127]}
    g, i = pair_distances(people, "euclidean")
    assert g.tolist() == pytest.approx([0.1]) and i.tolist() == pytest.approx([0.9, 1.0])


# --- Human-readable durations in zh-CN messages (models/timefmt.py) --------------------------------------

from models.timefmt import format_duration_zh  # noqa: E402


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 秒"), (0.2, "不到 1 秒"), (42, "42 秒"), (42.4, "约 42 秒"),
    (59.6, "约 1 分钟"),                     # rounds up into the next unit, never "60 秒"
    (300, "5 分钟"), (310, "约 5 分钟"), (1800, "30 分钟"),
    (3599, "约 1 小时"), (12600, "3.5 小时"), (3.52 * 3600, "约 3.5 小时"),
    (86390, "约 1 天"), (181440, "2.1 天"), (40 * 86400, "40 天"),
    (70 * 86400, "约 2.3 个月"),
    (145149.2 * 3600, "约 16.6 年"),        # the EXIF age the issue quoted as "145149.2 小时"
    (200 * 365.2425 * 86400, "200 年"),
    (-90, "约 2 分钟"),                      # a difference reads the same either way round
    (float("nan"), "时长未知"), (float("inf"), "时长未知"),
])
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert format_duration_zh(seconds) == text


def test_durations_never_show_sixty_of_a_unit_or_a_trailing_zero() -> None:
    for seconds in range(0, 3 * 86400, 7):
        text = format_duration_zh(seconds + 0.5)
        number = text.removeprefix("约 ").split(" ")[0]
        assert not number.endswith(".0"), text
        assert not (text.endswith((" 秒", " 分钟")) and float(number) >= 60), text
        assert not (text.endswith(" 小时") and float(number) >= 24), text


def test_heartbeat_faces_pass_fail_or_go_to_review() -> None:
    good = FaceQuality(side_px=200, sharpness=300.0, brightness=120.0, cut_off=False)
    camera = PhotoShape(short_side_px=720)

    def verdict(d: float | None, faces: int = 1, quality: FaceQuality = good,
                photo: PhotoShape = camera) -> tuple[str, list[str], str | None]:
        match = None if d is None else FaceMatch(distance=d, threshold=0.60, matched=d <= 0.60, template_index=0)
        status, findings, review = judge_heartbeat(faces, quality, match, ARCFACE, photo)
        return status, [f.code.value for f in findings], review.code if review else None

    assert verdict(0.30) == ("passed", [], None) and verdict(0.95) == ("failed", ["FACE_MISMATCH"], None)
    assert verdict(0.70) == ("review", [], "FACE_GREY_ZONE")
    assert verdict(0.30, faces=0) == ("failed", ["FACE_MISSING"], None)
    assert verdict(0.30, faces=2) == ("failed", ["FACE_MULTIPLE"], None)
    assert verdict(None) == ("review", [], "FACE_NOT_ENROLLED")  # no template of this model yet: not lost, reviewed
    # a face that cannot be judged, or a picture no camera took, fails however near its distance (a dithered
    # picture of the trainee measured 0.35 with ArcFace and passed before)
    assert verdict(0.30, quality=FaceQuality(side_px=30, sharpness=300.0, brightness=120.0, cut_off=False)) == (
        "failed", ["FACE_POOR"], None)
    assert verdict(0.35, photo=PhotoShape(short_side_px=720, colours=2)) == ("failed", ["FACE_POOR"], None)
    _, findings, _ = judge_heartbeat(0, None, None, ARCFACE, camera)
    assert findings[0].message == "学习抽拍照片中未检测到人脸"
    _, _, review = judge_heartbeat(1, good, None, ARCFACE, camera)
    assert review is not None and review.message.endswith("复核确认前不计入学时")
    # a near copy of an earlier photo fails however well its face matches (the photo of the enrolment, replayed)
    replay = judge_replay([("enrolment", 3, 0)], None, datetime(2026, 3, 2, tzinfo=UTC), None, None, ARCFACE)
    status, findings, review = judge_heartbeat(1, good, FaceMatch(0.01, 0.60, True, 0), ARCFACE, camera, replay)
    assert (status, [f.code.value for f in findings], review) == ("failed", ["PHOTO_REPLAY"], None)
    assert "人脸登记照片" in findings[0].message
    assert {c.value for c in HEARTBEAT_ALERTED} == {"PHOTO_REPLAY", "FACE_MISMATCH"}
    assert "在线学习抽拍照片" in judge_replay([("heartbeat", 9, 2)], None, datetime(2026, 3, 2, tzinfo=UTC), None, None,
                                           ARCFACE)[0].message
