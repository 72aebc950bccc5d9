"""Face embedders: what turns a located face into a vector. dlib's own encoder, or an aligned-crop model (ONNX
with onnxruntime, TFLite with LiteRT) run exactly as its manifest says: 68 landmarks reduced to five points,
a similarity warp onto the model's template, colour order, mean and std, layout, and L2 normalisation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import dlib
import numpy as np

from monitor.adapters.face_models import FaceModel, ModelFileError
from monitor.decisions.face_align import five_points_from_68, similarity_transform
from monitor.decisions.faces import Box

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # face_recognition_models imports pkg_resources
    import face_recognition

cv2.setNumThreads(1)  # one face process per core: OpenCV's own threads would only contend with the others


class Embedder(Protocol):
    def embed(self, image: np.ndarray, boxes: Sequence[Box]) -> list[list[float]]:
        """One vector per face box (top, right, bottom, left) of the RGB image."""


class DlibEmbedder:
    """dlib's ResNet encoder (128-d, Euclidean), through face_recognition."""

    def __init__(self, model: FaceModel) -> None:
        self.model = model

    def embed(self, image: np.ndarray, boxes: Sequence[Box]) -> list[list[float]]:
        if not boxes:
            return []
        return [[float(x) for x in enc] for enc in face_recognition.face_encodings(image, list(boxes), num_jitters=1)]


def landmarks_68(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 landmarks of one face box, (68, 2) pixels."""
    top, right, bottom, left = box
    shape = face_recognition.api.pose_predictor_68_point(image, dlib.rectangle(left, top, right, bottom))
    return np.asarray([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)


class CropEmbedder:
    """An aligned-crop model from its manifest: five-point similarity warp, then the network, then L2 norm."""

    def __init__(self, model: FaceModel) -> None:
        self.model = model
        pre = model.manifest.preprocessing
        if len(pre.template) != 5:
            raise ModelFileError(f"face model {model.name}: an aligned-crop model needs five template points")
        self.template = np.asarray(pre.template, dtype=np.float64)
        self.size = pre.size
        self._run = _load_runtime(model)

    def aligned_crop(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The face warped onto the model's template: (size, size, 3) uint8 RGB."""
        matrix = similarity_transform(five_points_from_68(landmarks_68(image, box)), self.template)
        crop: np.ndarray = cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return crop

    def embed_crops(self, crops: Sequence[np.ndarray]) -> list[list[float]]:
        """Vectors of aligned RGB crops: colour order, (x - mean) / std, layout, the network, L2 normalisation."""
        pre = self.model.manifest.preprocessing
        batch = np.stack([c[:, :, ::-1] if pre.colour_order == "BGR" else c for c in crops]).astype(np.float32)
        batch = (batch - np.float32(pre.mean)) / np.float32(pre.std)
        if pre.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        out: list[list[float]] = []
        for one in batch:  # one at a time: the exported graphs take a batch of one
            vector = np.asarray(self._run(np.ascontiguousarray(one[None])), dtype=np.float64).reshape(-1)
            if self.model.manifest.normalise:
                norm = float(np.linalg.norm(vector))
                vector = vector / norm if norm > 0 else vector
            out.append([float(x) for x in vector])
        return out

    def embed(self, image: np.ndarray, boxes: Sequence[Box]) -> list[list[float]]:
        if not boxes:
            return []
        return self.embed_crops([self.aligned_crop(image, box) for box in boxes])


def _load_runtime(model: FaceModel) -> Any:
    """A function from one input tensor to the model's output, on one CPU thread."""
    pre = model.manifest.preprocessing
    if model.manifest.engine == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(model.weights), options, providers=["CPUExecutionProvider"])
        name = pre.input or session.get_inputs()[0].name
        output = pre.output or session.get_outputs()[0].name
        dim = session.get_outputs()[0].shape[-1]
        if isinstance(dim, int) and dim != model.manifest.dimension:
            raise ModelFileError(f"face model {model.name}: the network gives {dim}-d vectors, the manifest says "
                                 f"{model.manifest.dimension}")
        return lambda x: session.run([output], {name: x})[0]
    if model.manifest.engine == "litert":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelFileError(f"face model {model.name} needs the LiteRT runtime: pip install ai-edge-litert "
                                 "(not installed by default)") from exc
        interpreter = Interpreter(model_path=str(model.weights), num_threads=1)
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()[0]
        inp, batch = details["index"], int(details["shape"][0])
        outp = interpreter.get_output_details()[0]["index"]

        def run(x: np.ndarray) -> np.ndarray:
            # Some exported graphs have a fixed batch (MobileFaceNet's is 2): fill it with copies, keep the first.
            interpreter.set_tensor(inp, np.repeat(x.astype(np.float32), batch, axis=0) if batch > 1 else x)
            interpreter.invoke()
            result: np.ndarray = interpreter.get_tensor(outp)[:1]
            return result
        return run
    raise ModelFileError(f"face model {model.name}: engine {model.manifest.engine!r} is not an aligned-crop model")


def create_embedder(model: FaceModel) -> DlibEmbedder | CropEmbedder:
    return DlibEmbedder(model) if model.manifest.engine == "dlib" else CropEmbedder(model)
