"""The province's face templates as a vector index for 1:N search (faiss), kept in step with `face_templates`.

The rows of `face_templates` are the vectors of record. Every process that searches holds its own
`FaceIndex`, built from that table at start-up and brought up to date before each search by loading
the rows with an id above the last one it has seen (as `monitor.adapters.photo_index` does for pHashes).
Templates are only ever appended, and enrolments take one lock (`lock_enrolments`) from search to
commit, so ids become visible in order and no row is skipped.

Index (`monitor.adapters.vector_index`): exact (`IndexFlatL2`) up to `FLAT_LIMIT` templates; above, an
inverted file over `sqrt(n)` k-means cells, 96 of them probed per query, with 8-bit scalar-quantised vectors
(`IndexIVFScalarQuantizer`, 128 bytes a template: 1 M templates measured 130 MB). Building is k-means
on a strided sample plus one pass of assignment: ~8 s at a million on one core, where graph indexes
(HNSW, in faiss and in usearch) took minutes for 200,000 on this two-core machine. Quantised distances
only pick candidates: the k nearest are re-ranked with exact distances from the stored encodings.
When the index grows past `RETRAIN_GROWTH` times the size it was trained at, it is rebuilt.

Loading: the JSON floats of `face_templates.encoding` parse at ~100 us a row (4 minutes for 2 M), so
each template also gets its float32 copy in `face_vectors` (512 bytes, `monitor.adapters.face_tables`,
written in the same transaction; migration 0009 fills it for older rows); the index loads those (seconds
for 2 M) and parses the JSON only of a template that has no copy. Exact distances always come from `encoding`.

faiss runs on one thread: searches are single queries from parallel request threads, and OpenMP
threads spinning against the other processes of a two-core machine made a search 100x slower.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Text, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from models.tables import FaceTemplate, Teacher, Trainee
from monitor.adapters.face_tables import FaceVector
from monitor.adapters.vector_index import DIM, FLAT_LIMIT, VectorIndex, parse_encodings
from monitor.decisions.faces import Metric, face_distance
from monitor.decisions.identity_match import NeighbourHit, PersonRef

KINDS = ("trainee", "teacher")


def _vectors_of(batch: Sequence[Any], dim: int) -> np.ndarray:
    """(n, dim) float32 from rows of (id, kind, person, float32 copy, encoding JSON when the copy is missing)."""
    missing = [i for i, r in enumerate(batch) if r[4] is not None]
    if not missing:
        return np.frombuffer(b"".join(r[3] for r in batch), dtype="<f4").reshape(len(batch), dim).astype(np.float32)
    out = np.zeros((len(batch), dim), np.float32)
    absent = set(missing)
    present = [i for i in range(len(batch)) if i not in absent]
    if present:
        out[present] = np.frombuffer(b"".join(batch[i][3] for i in present), dtype="<f4").reshape(-1, dim)
    out[missing] = parse_encodings([batch[i][4] for i in missing], dim)
    return out


@dataclass(frozen=True)
class IndexStats:
    templates: int
    kind: str
    index_bytes: int
    last_id: int


class FaceIndex:
    """Every face template of the province made with one model (`model_version`, `dim`-d vectors), searchable by
    k nearest; refreshed from the table by id. Templates of another model are never loaded: old and new vectors
    never meet in one comparison."""

    def __init__(self, batch: int = 50_000, flat_limit: int = FLAT_LIMIT, model_version: str | None = None,
                 dim: int = DIM) -> None:
        self.batch = batch
        self.flat_limit = flat_limit
        self.model_version = model_version
        self.dim = dim
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._core = VectorIndex(flat_limit=self.flat_limit, dim=self.dim)
        self._template_ids = array("q")
        self._kinds = array("b")
        self._person_ids = array("q")
        self._last_id = 0

    def _load_since(self, session: Session, last_id: int) -> tuple[list[Any], np.ndarray]:
        rows: list[Any] = []
        chunks: list[np.ndarray] = []
        while True:
            batch = session.execute(
                select(FaceTemplate.id, FaceTemplate.person_kind, FaceTemplate.person_id, FaceVector.vector,
                       case((or_(FaceVector.vector.is_(None), func.length(FaceVector.vector) != self.dim * 4),
                             cast(FaceTemplate.encoding, Text)), else_=None))
                .outerjoin(FaceVector, FaceVector.template_id == FaceTemplate.id)
                .where(FaceTemplate.id > last_id, *self._of_model()).order_by(FaceTemplate.id).limit(self.batch)
            ).all()
            if not batch:
                break
            rows.extend((r[0], r[1], r[2]) for r in batch)
            chunks.append(_vectors_of(batch, self.dim))
            last_id = batch[-1][0]
            if len(batch) < self.batch:
                break
        return rows, (np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32))

    def _of_model(self) -> list[Any]:
        return of_model(self.model_version)

    def refresh(self, session: Session) -> int:
        """Load templates added since the last refresh (a full rebuild when the index must be retrained)."""
        with self._lock:
            rows, vectors = self._load_since(session, self._last_id)
            if not rows:
                return 0
            if self._core.needs_rebuild(len(rows)):
                self._reset()
                rows, vectors = self._load_since(session, 0)
                self._core.build(vectors)
            else:
                self._core.add(vectors)
            for template_id, kind, person_id in rows:
                self._template_ids.append(template_id)
                self._kinds.append(KINDS.index(kind) if kind in KINDS else -1)
                self._person_ids.append(person_id)
            self._last_id = rows[-1][0]
            return len(rows)

    def rebuild(self, session: Session) -> int:
        """Drop everything and load the whole table again."""
        with self._lock:
            self._reset()
        return self.refresh(session)

    def search(self, encodings: Sequence[Sequence[float]], k: int) -> list[list[tuple[int, str, int, float]]]:
        """Per encoding, its k nearest templates: (template id, person kind, person id, approximate distance)."""
        if not len(encodings):
            return []
        with self._lock:
            distances, positions = self._core.search(np.asarray(encodings, dtype=np.float32), k)
            out = []
            for row_d, row_p in zip(distances, positions, strict=True):
                out.append([(self._template_ids[p], KINDS[self._kinds[p]], self._person_ids[p], float(d))
                            for d, p in zip(row_d, row_p, strict=True) if p >= 0])
        return out

    def stats(self) -> IndexStats:
        with self._lock:
            return IndexStats(self._core.size, self._core.kind, self._core.nbytes(), self._last_id)


def of_model(model_version: str | None) -> list[Any]:
    """The clause keeping a query to one model's templates (none: every model's, for tools that count them all)."""
    return [FaceTemplate.model_version == model_version] if model_version is not None else []


def lock_enrolments(session: Session) -> None:
    """Serialise enrolments across processes (PostgreSQL) from 1:N search to commit; SQLite serialises writes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('face_templates'))"))


def own_template_count(session: Session, own: PersonRef, model_version: str | None = None) -> int:
    """Templates of the person themselves: their own rows, and those of a trainee/teacher with the same ID number."""
    count = int(session.scalar(select(func.count()).select_from(FaceTemplate).where(
        FaceTemplate.person_kind == own.kind, FaceTemplate.person_id == own.id, *of_model(model_version))) or 0)
    other_model = Teacher if own.kind == "trainee" else Trainee
    twin = session.scalar(select(other_model.id).where(other_model.id_number == own.id_number))
    if twin is not None:
        count += int(session.scalar(select(func.count()).select_from(FaceTemplate).where(
            FaceTemplate.person_kind == ("teacher" if own.kind == "trainee" else "trainee"),
            FaceTemplate.person_id == twin, *of_model(model_version))) or 0)
    return count


def nearest_templates(session: Session, index: FaceIndex, encodings: Sequence[Sequence[float]], own: PersonRef,
                      k: int, metric: Metric) -> list[list[NeighbourHit]]:
    """Per encoding, the nearest templates of *other* people (about k of them), with exact distances.

    The index proposes candidates (4k plus the person's own templates, which are skipped); their stored
    encodings give the exact distances, and their people's ID numbers let same-ID records be told apart.
    """
    index.refresh(session)
    wanted = 4 * k + own_template_count(session, own, index.model_version)
    proposals = index.search(encodings, wanted)
    ids = sorted({p[0] for per in proposals for p in per})
    if not ids:
        return [[] for _ in encodings]
    rows = {r.id: r for r in session.execute(
        select(FaceTemplate.id, FaceTemplate.person_kind, FaceTemplate.person_id, FaceTemplate.encoding,
               FaceTemplate.photo_sha256).where(FaceTemplate.id.in_(ids))).all()}
    id_numbers: dict[tuple[str, int], str] = {}
    for kind, model in (("trainee", Trainee), ("teacher", Teacher)):
        people = {r.person_id for r in rows.values() if r.person_kind == kind}
        if people:
            id_numbers |= {(kind, pid): number for pid, number in session.execute(
                select(model.id, model.id_number).where(model.id.in_(people)))}
    out = []
    for encoding, per in zip(encodings, proposals, strict=True):
        hits = []
        for template_id, kind, person_id, _approx in per:
            row = rows.get(template_id)
            if row is None or (kind, person_id) not in id_numbers:
                continue
            person = PersonRef(kind, person_id, id_numbers[(kind, person_id)])
            if person.key == own.key or person.id_number == own.id_number:
                continue  # never oneself, nor one's record under the other kind with the same ID number
            distance = face_distance(encoding, row.encoding, metric)
            hits.append(NeighbourHit(template_id, person, distance, row.photo_sha256))
        out.append(sorted(hits, key=lambda h: h.distance))
    return out
