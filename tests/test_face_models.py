"""Face models as manifests: weights pinned by SHA-256, preprocessing that cannot drift, geometry, metrics,
templates of two models kept apart and re-enrolment that resumes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ingest.adapters.evidence import EvidenceStore
from models.tables import FaceTemplate, Verification
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_embedders import CropEmbedder
from monitor.adapters.face_models import (
    DEFAULT_FACE_MODEL,
    ModelFileError,
    load_face_model,
    load_manifest,
    manifest_names,
)
from monitor.adapters.photo_decode import decode_upright_rgb
from monitor.decisions.face_align import five_points_from_68, similarity_transform
from monitor.decisions.faces import face_distance, face_distances
from monitor.services.reenrol import ReenrolProgress, photos_without_template, reenrol
from tests.helpers import FACES_DIR, World, auth, face

REGRESSION = json.loads((Path(__file__).parent / "data" / "face_regression.json").read_text())


def synthetic_crop(size: int) -> np.ndarray:
    """A fixed RGB crop whose three channels differ, so that a swapped colour order or layout shows."""
    y, x = np.indices((size, size))
    return np.stack([(x * 2 + y) % 256, (x * y // 7) % 256, (255 - x - y // 2) % 256], axis=-1).astype(np.uint8)


def cosine(a: list[float], b: list[float]) -> float:
    return 1.0 - face_distance(a, b, "cosine")


def test_the_default_model_is_the_arcface_onnx_manifest_and_every_shipped_one_loads() -> None:
    assert DEFAULT_FACE_MODEL == "faceplugin-arcface"
    for name in manifest_names():
        model = load_face_model(name)
        assert model.model_version == f"{name}@{model.sha256[:16]}" and len(model.model_version) <= 64
        assert model.manifest.licence.unknown, "what is unknown about provenance must be written down"


def test_weights_that_are_missing_or_changed_are_refused(tmp_path: Path) -> None:
    manifest = load_manifest("faceplugin-arcface")
    with pytest.raises(ModelFileError, match="missing.*setup.sh"):
        load_face_model("faceplugin-arcface", tmp_path)
    good = load_face_model("faceplugin-arcface").weights
    copy = tmp_path / manifest.source.file
    copy.parent.mkdir(parents=True)
    shutil.copyfile(good, copy)
    assert load_face_model("faceplugin-arcface", tmp_path).weights == copy
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"pins {manifest.source.sha256}"):
        load_face_model("faceplugin-arcface", tmp_path)


@pytest.mark.parametrize("name", ["faceplugin-arcface", "expo-mobilefacenet"])
def test_a_fixed_crop_gives_the_recorded_vector(name: str) -> None:
    """Colour order, mean/std, layout and normalisation: the network's answer for a fixed crop must not drift."""
    embedder = CropEmbedder(load_face_model(name))
    [vector] = embedder.embed_crops([synthetic_crop(embedder.size)])
    expected = REGRESSION[name]["synthetic_crop"]
    assert len(vector) == load_manifest(name).dimension == len(expected)
    assert np.allclose(vector, expected, atol=2e-5)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6
    [swapped] = embedder.embed_crops([synthetic_crop(embedder.size)[:, :, ::-1]])
    assert cosine(swapped, expected) < 0.99  # the test sees a colour-order change


@pytest.mark.parametrize("name", ["faceplugin-arcface", "expo-mobilefacenet"])
def test_landmarks_and_alignment_give_the_recorded_vector_for_a_real_face(name: str) -> None:
    """The whole scan (decode, detection, 68 landmarks, five points, warp, network) on a real photo."""
    photo = (FACES_DIR / "people/obama/obama.jpg").read_bytes()
    [found] = FaceEngine(load_face_model(name)).scan(photo).faces
    assert cosine(found.encoding, REGRESSION[name]["obama_aligned"]) > 0.9999
    embedder = CropEmbedder(load_face_model(name))
    img, scale, _ = decode_upright_rgb(photo, 1000)
    box = tuple(round(v / scale) for v in found.box)
    crop = embedder.aligned_crop(img, box)  # type: ignore[arg-type]
    assert crop.shape == (112, 112, 3)
    [aligned] = embedder.embed_crops([crop])
    [shifted] = embedder.embed_crops([np.roll(crop, 8, axis=1)])  # alignment off by 8 px
    assert cosine(aligned, REGRESSION[name]["obama_aligned"]) > 0.99
    assert cosine(shifted, aligned) < cosine(aligned, REGRESSION[name]["obama_aligned"])


def test_similarity_transform_recovers_a_known_similarity() -> None:
    template = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])
    angle, scale, shift = 0.3, 2.5, np.array([140.0, 60.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo = (template @ rotation.T) * scale + shift  # the face as it lies in the photo
    matrix = similarity_transform(photo, template)
    back = photo @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, template, atol=1e-9)
    with pytest.raises(ValueError):
        similarity_transform([[1, 1], [1, 1]], [[0, 0], [1, 1]])


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners() -> None:
    points = np.arange(136, dtype=float).reshape(68, 2)
    five = five_points_from_68(points)
    assert np.allclose(five[0], points[36:42].mean(axis=0)) and np.allclose(five[1], points[42:48].mean(axis=0))
    assert np.allclose(five[2:], points[[30, 48, 54]])
    with pytest.raises(ValueError):
        five_points_from_68(points[:5])


def test_cosine_and_euclidean_distances() -> None:
    a, b = [1.0, 0.0], [0.0, 2.0]
    assert face_distance(a, b, "cosine") == pytest.approx(1.0)
    assert face_distance(a, [3.0, 0.0], "cosine") == pytest.approx(0.0)
    assert face_distance(a, [-1.0, 0.0], "cosine") == pytest.approx(2.0)
    assert face_distances(a, [b, a], "euclidean").tolist() == pytest.approx([np.sqrt(5), 0.0])


def test_the_arcface_model_separates_the_sample_people_far_better_than_its_thresholds() -> None:
    engine = FaceEngine()
    enc = {p: [engine.scan(f.read_bytes(), "enrolment").faces[0].encoding
               for f in sorted((FACES_DIR / "people" / p).iterdir())] for p in ("obama", "biden", "kit_harington")}
    t = load_manifest("faceplugin-arcface").operating_points
    same = [face_distance(a, b, "cosine") for v in enc.values() for i, a in enumerate(v) for b in v[i + 1:]]
    other = [face_distance(a, b, "cosine") for p, v in enc.items() for q, w in enc.items() if p < q
             for a in v for b in w]
    assert max(same) < t.face_match_threshold < t.face_mismatch_threshold < min(other)


def test_templates_of_two_models_never_meet_and_re_enrolment_resumes(
        client_factory: Callable[..., TestClient], tmp_path: Path) -> None:
    """A center on dlib switches to the ArcFace model: until re-enrolment a check-in has nothing to compare with
    (review, never a cross-model distance); `reenrol` adds one template per photo, resumes after an interruption,
    and check-ins then pass on the new model."""
    data = tmp_path / "data"
    old = client_factory(data_dir=data, face_model="dlib-resnet")
    world = World.build(old)
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.json()["status"] == "passed" and r.json()["face_engine"] == "dlib-resnet"
    db = old.app.state.db
    with db.session() as s:
        dlib_templates = s.scalar(select(func.count()).select_from(FaceTemplate))
    new_engine = FaceEngine()
    assert len(photos_without_template(db, new_engine.model_version)) == dlib_templates

    new = client_factory(data_dir=data)  # the same database, now on the default model
    world.client = new
    r = world.checkin(face("people/obama/obama1.jpg"), key="after-switch")
    body = r.json()
    assert body["status"] == "review" and body["face_distance"] is None, body
    assert "尚无当前人脸模型" in body["message"]

    class Stop(Exception):
        pass

    def interrupt(progress: ReenrolProgress) -> None:
        raise Stop

    evidence = EvidenceStore(data / "evidence")
    with pytest.raises(Stop):
        reenrol(db, evidence, new_engine, batch=1, on_progress=interrupt)
    assert len(photos_without_template(db, new_engine.model_version)) == dlib_templates - 1
    progress = reenrol(db, evidence, new_engine, batch=1)
    assert progress.total == dlib_templates - 1 and progress.added == dlib_templates - 1 and not progress.refused
    assert reenrol(db, evidence, new_engine).total == 0  # nothing left: resumable and idempotent
    with db.session() as s:
        per_model = dict(s.execute(select(FaceTemplate.model_version, func.count()).group_by(
            FaceTemplate.model_version)).all())
    assert per_model == {"dlib-resnet@55533b28a95800a5": dlib_templates, new_engine.model_version: dlib_templates}
    r = world.checkin(face("people/obama/obama-480p.jpg"), key="after-re-enrol")
    assert r.json()["status"] == "passed" and r.json()["face_engine"] == "faceplugin-arcface", r.json()["message"]
    with db.session() as s:
        v = s.scalar(select(Verification).where(Verification.subject_id == r.json()["id"]))
        assert v is not None and v.model_version == new_engine.model_version
        assert v.thresholds["face_model_sha256"] == new_engine.model.sha256 and v.thresholds["metric"] == "cosine"
    reviews = new.get("/api/v1/reviews", headers=auth(world.admin)).json()
    assert [i["reason_code"] for i in reviews] == ["FACE_NOT_ENROLLED"]
