"""Photos as phones really send them: a JPEG with a Multi-Picture index (Ultra HDR, iPhone HDR), a black or white
frame from a camera that was not ready, a large 16-bit PNG; and an EXIF capture time told in Beijing time."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime

import numpy as np
from PIL import Image, ImageOps

from ingest.adapters.images import inspect_image
from models.clock import SHANGHAI
from monitor.adapters.photo_decode import decode_upright_rgb
from monitor.adapters.photo_index import PhotoHashIndex, phash_has_structure
from monitor.decisions.verdicts import judge_replay
from monitor.settings import Settings
from tests.helpers import REPO, World, auth, face


def multi_picture_jpeg(photo: bytes) -> bytes:
    """The photo as a JPEG with an MPF index and a second picture after it, as an Ultra HDR or HDR phone photo."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("RGB")
    out = io.BytesIO()
    image.save(out, "MPO", save_all=True, append_images=[image.resize((image.width // 4, image.height // 4))])
    return out.getvalue()


def jpeg_of(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (960, 1280), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def flat_png(width: int, height: int, depth: int, colour_type: int, channels: int) -> bytes:
    """A flat PNG of any size that compresses to almost nothing (a decompression bomb within the pixel limit)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels * depth // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_multi_picture_jpeg_is_accepted_as_a_jpeg_and_judged(world: World) -> None:
    photo = multi_picture_jpeg(face("people/obama/obama2.jpg"))
    assert Image.open(io.BytesIO(photo)).format == "MPO"  # what Pillow calls it: it used to be a 415
    assert inspect_image(photo, 40_000_000).media_type == "image/jpeg"
    r = world.checkin(photo)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "passed" and r.json()["face_distance"] is not None, r.text
    large, _, opened = decode_upright_rgb(photo, 400)
    assert opened.format == "MPO" and max(large.shape[:2]) <= 400  # decoded reduced, like any JPEG


def test_blank_frames_are_not_replays_of_each_other(world: World) -> None:
    first = world.checkin(jpeg_of((0, 0, 0)), device_id="phone-a")
    second = world.checkin(jpeg_of((255, 255, 255)), device_id="phone-b")
    for r in (first, second):
        assert r.status_code == 201, r.text
        assert [x["code"] for x in r.json()["reasons"]] == ["FACE_MISSING"], r.text  # no PHOTO_REPLAY
    assert not phash_has_structure("0000000000000000") and not phash_has_structure("8000000000000000")
    assert phash_has_structure("9a92701b32e5d35e")  # a photo: 32 of 64 bits set
    assert PhotoHashIndex().find_near("8000000000000000", 64) == []


def test_a_large_flat_sixteen_bit_png_is_decoded_in_little_memory() -> None:
    """A 77 KB 40 MP 16-bit PNG took about 800 MB to decode (converted to float64 at full size first)."""
    script = (
        "import resource, sys\n"
        "from monitor.adapters.photo_decode import decode_upright_rgb\n"
        "data = sys.stdin.buffer.read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "array, scale, _ = decode_upright_rgb(data, 1000)\n"
        "print(array.shape[0], array.shape[1], round(scale, 2),"
        " (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    data = flat_png(6300, 6300, 16, 0, 1)
    assert len(data) < 200_000 and inspect_image(data, 40_000_000).width == 6300
    out = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, check=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO)}).stdout.split()
    height, width, scale, grown_mb = int(out[0]), int(out[1]), float(out[2]), int(out[3])
    assert (height, width) == (1000, 1000) and scale == 6.3
    assert grown_mb < 300, f"decoding grew the process by {grown_mb} MB"


def test_orientation_and_palette_survive_the_early_reduction() -> None:
    upright = Image.new("RGB", (3000, 2000), (200, 30, 30))
    upright.paste((30, 30, 200), (0, 0, 1500, 2000))  # blue on the left half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer turns it 90° clockwise
    out = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(out, "PNG", exif=exif.tobytes())
    array, scale, _ = decode_upright_rgb(out.getvalue(), 1000)
    assert array.shape[:2] == (667, 1000) and scale == 3.0
    assert array[333, 100, 2] > 150 and array[333, 900, 0] > 150  # blue left, red right: upright
    palette = io.BytesIO()
    clear = upright.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    clear.save(palette, "PNG", transparency=clear.getpixel((10, 10)))
    array, _, _ = decode_upright_rgb(palette.getvalue(), 1000)
    assert tuple(array[300, 100]) == (255, 255, 255)  # the transparent colour composited on white, still exact


def test_an_exif_capture_time_is_told_in_beijing_time() -> None:
    taken = datetime(2015, 6, 1, 2, 0, tzinfo=UTC)  # the camera wrote 2015:06:01 10:00:00 (Beijing)
    findings = judge_replay([], taken, datetime(2026, 1, 1, tzinfo=UTC), None, None, Settings().thresholds())
    assert "2015-06-01 10:00，北京时间" in findings[0].message, findings[0].message


def test_a_50_megapixel_phone_jpeg_is_accepted_and_a_png_that_large_is_refused_with_what_to_do() -> None:
    """Outside probe: 48 and 50 MP phone photos (8160×6144) were refused 413 by the 40 MP limit meant for PNG. A
    JPEG is decoded reduced, so it may be larger; a PNG that large is still refused, saying what to do."""
    import pytest

    from models.errors import ApiError

    out = io.BytesIO()
    Image.new("RGB", (8160, 6144), (120, 110, 100)).save(out, "JPEG", quality=60)
    accepted = inspect_image(out.getvalue(), 40_000_000)
    assert (accepted.width, accepted.height, accepted.media_type) == (8160, 6144, "image/jpeg")
    large, _, _ = decode_upright_rgb(out.getvalue(), 400)
    assert max(large.shape[:2]) <= 1020  # decoded at 1/8 at most, never whole
    png = flat_png(8160, 6144, 8, 0, 1)
    with pytest.raises(ApiError) as refused:
        inspect_image(png, 40_000_000)
    assert refused.value.status == 413 and refused.value.code == "IMAGE_TOO_MANY_PIXELS"
    assert "调低" in refused.value.message and "40 百万像素" in refused.value.message


def sideways(photo: bytes, degrees: int) -> bytes:
    """The photo with its pixels turned and no EXIF orientation, as some phones' web cameras send it."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("RGB").rotate(degrees, expand=True)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_selfie_sent_sideways_without_exif_is_judged_upright(world: World) -> None:
    """Outside probe: a selfie turned 90° or 180° with no EXIF orientation was 未检测到人脸 (HOG finds only upright
    faces). Nothing found, the picture is looked at turned: the trainee passes, and the verdict says it was turned.
    A stranger sent sideways is still a stranger."""
    from sqlalchemy import select

    from models.tables import Verification

    for degrees, photo in ((90, "obama2.jpg"), (270, "obama1.jpg"), (180, "obama-720p.jpg")):  # (one photo twice,
        r = world.checkin(sideways(face(f"people/obama/{photo}"), degrees))  # turned otherwise, is a replay)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "passed", (degrees, r.text)
        with world.client.app.state.db.session() as s:
            measured = s.scalars(select(Verification.measured).where(Verification.subject_id == r.json()["id"])).one()
        assert measured["turned_deg"] in (90.0, 180.0, 270.0)
    r = world.checkin(sideways(face("people/biden/biden.jpg"), 90), trainee_id=world.obama_id)
    assert r.status_code == 201 and r.json()["status"] == "failed", r.text
    assert "人脸与登记照片不符" in r.text or "另一名学员" in r.text, r.text


def strip(photo: bytes, size: tuple[int, int]) -> bytes:
    """The photo fitted into a long strip of `size` (a panorama, a cropped screenshot), the rest grey."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("RGB")
    image.thumbnail(size)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_face_in_a_long_strip_is_found_and_a_photo_too_small_to_hold_one_is_not_called_empty(world: World) -> None:
    """Outside tester: a 4000x800 or 800x4000 sign-in whose face fills the short side was 未检测到人脸 (brought to
    400 px long for detection, the face was 22 px), and a 64x64 photo was FACE_MISSING, the code of a photo with
    nobody in it. The strip is detected keeping its short side; the thumbnail is FACE_POOR (too few pixels)."""
    for size, photo in (((4000, 800), "obama2.jpg"), ((800, 4000), "obama1.jpg")):
        r = world.checkin(strip(face(f"people/obama/{photo}"), size))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "passed", (size, r.text)
    tiny = strip(face("people/obama/obama-720p.jpg"), (64, 64))
    r = world.checkin(tiny)
    assert r.status_code == 201, r.text
    assert [x["code"] for x in r.json()["reasons"]] == ["FACE_POOR"], r.text
    assert "照片分辨率过低（短边 64 像素" in r.json()["message"]


def test_detection_keeps_a_strips_short_side_and_shrinks_ordinary_photos_as_before() -> None:
    from monitor.adapters.face_scan import PLANS

    selfie = PLANS["selfie"]
    assert selfie.detection_factor(750, 1000) == 2.5  # 4:3, 16:9 and 9:16: the longer side to 400 px
    assert selfie.detection_factor(1000, 563) == 2.5
    assert selfie.detection_factor(200, 1000) == 1.0  # a 5:1 strip: its 200 px short side kept
    assert selfie.detection_factor(1000, 450) == 2.25  # 9:20: the short side kept at 200 px
    assert selfie.detection_factor(300, 200) == 1.0  # never enlarged


def cut_short(photo: bytes, keep: float) -> bytes:
    """The photo as a 12 MP baseline JPEG cut after `keep` of its bytes, an end-of-image marker appended: a transfer
    cut short that still ends like a whole JPEG, so the upload's structure check passes and libjpeg paints the
    rest mid-grey without an error."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("RGB").resize((3000, 4000))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    data = out.getvalue()
    return data[:int(len(data) * keep)] + b"\xff\xd9"


def bitonal_png(photo: bytes) -> bytes:
    """The photo dithered to black and white (a 1-bit PNG), as a scanner or an image tool writes it."""
    out = io.BytesIO()
    ImageOps.exif_transpose(Image.open(io.BytesIO(photo))).convert("1").save(out, "PNG")
    return out.getvalue()


def test_a_photo_cut_short_is_a_retake_not_an_empty_seat(world: World) -> None:
    """Outside tester: a JPEG cut short with FFD9 appended was accepted, decoded grey-filled and judged FACE_MISSING
    (nobody there). Its lower part is the decoder's fill: FACE_POOR, saying the file was cut, with the share."""
    photo = cut_short(face("people/obama/obama2.jpg"), 0.12)
    inspect_image(photo, Settings().max_image_pixels)  # the upload's header-only check cannot tell it is cut
    r = world.checkin(photo)
    assert r.status_code == 201, r.text
    assert [x["code"] for x in r.json()["reasons"]] == ["FACE_POOR"], r.text
    assert "照片不完整" in r.json()["message"] and "截断" in r.json()["message"], r.text
    whole = cut_short(face("people/obama/obama2.jpg"), 1.0)  # the same photo whole passes
    assert world.checkin(whole).json()["status"] == "passed"


def test_a_dithered_black_and_white_face_is_a_retake_not_a_mismatch(world: World) -> None:
    """Outside tester: a 1-bit dithered PNG of the trainee was judged FACE_MISMATCH (accused of another face). A
    picture of two colours is no camera's photo: FACE_POOR for the check-in, refused as an enrolment photo."""
    photo = bitonal_png(face("people/obama/obama2.jpg"))
    r = world.checkin(photo, filename="selfie.png")
    assert r.status_code == 201, r.text
    assert [x["code"] for x in r.json()["reasons"]] == ["FACE_POOR"], r.text
    assert "只有 2 种颜色" in r.json()["message"], r.text
    r = world.client.post(f"/api/v1/trainees/{world.biden_id}/faces", headers=auth(world.admin), files=[
        ("photos", ("bw.png", bitonal_png(face("people/biden/biden2.jpg")), "image/png"))])
    assert r.status_code == 422 and r.json()["code"] == "ENROLMENT_PHOTO_REFUSED", r.text
    assert "2 种颜色" in r.json()["message"], r.text


def test_a_dithered_heartbeat_fails_saying_why_and_its_verification_is_kept(world: World) -> None:
    """An online-study heartbeat was judged by face alone: a 1-bit dithered picture of the trainee passed (ArcFace
    distance 0.35), and a failed heartbeat said nothing of why. Now it is judged as a check-in's face (no classmates):
    FACE_POOR with the reason on the answer and the session, and what was measured kept as its verification."""
    from sqlalchemy import select

    from models.tables import Verification

    r = world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id, "trainee_id": world.obama_id},
                          headers=auth(world.site))
    assert r.status_code == 201, r.text
    online_id = r.json()["id"]

    def beat(photo: bytes, name: str) -> dict:
        answer = world.client.post(f"/api/v1/online/sessions/{online_id}/heartbeats",
                                   data={"captured_at": datetime.now(UTC).isoformat()},
                                   files={"photo": (name, photo, "image/png")}, headers=auth(world.site))
        assert answer.status_code == 201, answer.text
        return answer.json()

    dithered = beat(bitonal_png(face("people/obama/obama2.jpg")), "beat.png")
    assert dithered["status"] == "failed" and [x["code"] for x in dithered["reasons"]] == ["FACE_POOR"], dithered
    assert "只有 2 种颜色" in dithered["message"] and "本段学时不计" in dithered["message"], dithered
    genuine = beat(face("people/obama/obama1.jpg"), "beat.jpg")
    assert genuine["status"] == "passed" and genuine["reasons"] == [], genuine
    nobody = io.BytesIO()  # a wall: camera noise, no face
    Image.fromarray(np.random.default_rng(7).integers(90, 160, (600, 800, 3), dtype=np.uint8)).save(nobody, "JPEG")
    empty = beat(nobody.getvalue(), "empty.jpg")
    assert empty["status"] == "failed" and [x["code"] for x in empty["reasons"]] == ["FACE_MISSING"], empty
    assert "学习抽拍照片中未检测到人脸" in empty["message"], empty
    # A fixed webcam's next frame: the same scene a little shifted, with sensor noise. By pHash it is a near copy of
    # the last one (an outside tester asked for near copies to be refused), so heartbeats are not judged near
    # copies: it passes, and no alert is raised on an honest trainee.
    still = np.asarray(Image.open(io.BytesIO(face("people/obama/obama1.jpg"))).convert("RGB")).astype(float)
    shifted = np.roll(still, (6, 20), axis=(0, 1)) + np.random.default_rng(3).normal(0, 3, still.shape)
    next_frame = io.BytesIO()
    Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)).save(next_frame, "JPEG", quality=85)
    webcam = beat(next_frame.getvalue(), "frame.jpg")
    assert webcam["status"] == "passed" and webcam["reasons"] == [], webcam
    shown = world.client.get(f"/api/v1/online/sessions/{online_id}", headers=auth(world.site)).json()["heartbeats"]
    assert {b["id"]: b["reasons"] for b in shown}[dithered["id"]] == dithered["reasons"]
    # The wall's day timeline says why too (a poor photo raises no anomaly, so nothing else there would).
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    day = world.client.get(f"/api/v1/classes/{world.class_id}/trainees/{world.obama_id}/day?day={today}",
                           headers=auth(world.operator)).json()
    on_wall = {i["subject_id"]: i["reasons"] for i in day["items"] if i["kind"] == "heartbeat"}
    assert on_wall[dithered["id"]] == dithered["reasons"] and on_wall[empty["id"]] == empty["reasons"]
    assert on_wall[genuine["id"]] == []
    with world.client.app.state.db.session() as s:
        kept = {v.subject_id: v for v in s.scalars(
            select(Verification).where(Verification.subject_kind == "heartbeat"))}
    assert not kept[dithered["id"]].passed and kept[dithered["id"]].measured["photo_colours"] == 2
    assert kept[genuine["id"]].passed and kept[genuine["id"]].face_distance is not None
    assert kept[genuine["id"]].model_version and kept[genuine["id"]].thresholds["face_match"] > 0

