"""k-nearest search over float32 vectors (128-d by default) with faiss: exact when small, IVF with 8-bit codes
when large."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import faiss
import numpy as np

DIM = 128
FLAT_LIMIT = 20_000
RETRAIN_GROWTH = 8
faiss.omp_set_num_threads(1)


class VectorIndex:
    """k-nearest search over `dim`-d float32 vectors by position (exact when small, IVF-SQ8 when large)."""

    def __init__(self, flat_limit: int = FLAT_LIMIT, nprobe: int = 96, seed: int = 1234, dim: int = DIM) -> None:
        self.dim = dim
        self.flat_limit = flat_limit
        self.nprobe = nprobe
        self.seed = seed
        self.index: faiss.Index = faiss.IndexFlatL2(dim)
        self.trained_at = 0

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        return "flat" if isinstance(self.index, faiss.IndexFlatL2) else "ivf_sq8"

    def needs_rebuild(self, adding: int) -> bool:
        """True when the index should be built again from all its vectors: an exact one would outgrow `flat_limit`,
        an IVF one its training (`RETRAIN_GROWTH` x)."""
        if self.kind == "flat":
            return self.size + adding > self.flat_limit
        return self.size + adding > self.trained_at * RETRAIN_GROWTH

    def build(self, vectors: np.ndarray) -> None:
        """Replace the index by one over `vectors` (rows in position order)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(vectors)
        if n <= self.flat_limit:
            index: faiss.Index = faiss.IndexFlatL2(self.dim)
        else:
            nlist = int(min(8192, max(64, round(math.sqrt(n)))))
            quantizer = faiss.IndexFlatL2(self.dim)
            index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit)
            index.cp.seed = self.seed
            sample = vectors[:: max(1, n // (nlist * 50))]  # strided: the same sample in every process
            index.train(sample)
            index.nprobe = min(self.nprobe, nlist)
            self.trained_at = n
        index.add(vectors)
        self.index = index

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; an exact index that outgrows `flat_limit` is rebuilt as IVF from its own copy."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not len(vectors):
            return
        if self.kind == "flat" and self.size + len(vectors) > self.flat_limit:
            old = self.index.reconstruct_n(0, self.size) if self.size else np.zeros((0, self.dim), np.float32)
            self.build(np.concatenate([old, vectors]))
            return
        self.index.add(vectors)

    def append(self, vectors: np.ndarray) -> None:
        """Append vectors as they are, never rebuilding (an exact index may grow past `flat_limit` meanwhile)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors):
            self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, positions) of the k nearest per query; distances Euclidean (approximate when IVF)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if not self.size:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        squared, positions = self.index.search(queries, min(k, self.size))
        return np.sqrt(np.maximum(squared, 0)), positions

    def nbytes(self) -> int:
        """Bytes of the serialised index (vectors, codes, centroids and lists)."""
        return int(faiss.serialize_index(self.index).nbytes) if self.size else 0


def parse_encodings(texts: Sequence[str], dim: int = DIM) -> np.ndarray:
    """JSON float lists (as stored) to an (n, dim) float32 array, parsed in C in one pass."""
    if not texts:
        return np.zeros((0, dim), np.float32)
    joined = ",".join(t.strip()[1:-1] for t in texts)
    values = np.fromstring(joined, dtype=np.float64, sep=",")
    if values.size != len(texts) * dim:  # an odd row: parse one by one
        values = np.array([json.loads(t) for t in texts], dtype=np.float64)
    return values.reshape(len(texts), dim).astype(np.float32)
