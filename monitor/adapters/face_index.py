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
When the index grows past `RETRAIN_GROWTH` times the size it was trained at (or an exact one past `FLAT_LIMIT`), it
is rebuilt in a background thread while the current index keeps answering (`FaceIndex`): no search waits for a
k-means; for the build's duration the process holds both (about twice the index's memory).

Loading: the JSON floats of `face_templates.encoding` parse at ~100 us a row (4 minutes for 2 M), so
each template also gets its float32 copy in `face_vectors` (512 bytes, `monitor.adapters.face_tables`,
written in the same transaction; migration 0009 fills it for older rows); the index loads those (seconds
for 2 M) and parses the JSON only of a template that has no copy. Exact distances always come from `encoding`.

faiss runs on one thread: searches are single queries from parallel request threads, and OpenMP
threads spinning against the other processes of a two-core machine made a search 100x slower.
"""

from __future__ import annotations

import bisect
import logging
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Text, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from models.tables import FaceTemplate, Teacher, Trainee
from monitor.adapters.face_tables import FaceVector
from monitor.adapters.vector_index import DIM, FLAT_LIMIT, VectorIndex, parse_encodings
from monitor.decisions.faces import Metric, face_distance
from monitor.decisions.identity_match import NeighbourHit, PersonRef

log = logging.getLogger(__name__)

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
    rebuilding: bool = False
    rebuilds: int = 0


@dataclass
class _Rebuild:
    """A retrain in flight: the core is built from the templates up to `upto`; templates loaded meanwhile answer
    from the current core and wait in `pending` to be replayed onto the new one when it swaps in."""

    upto: int
    pending: list[np.ndarray] = field(default_factory=list)
    thread: threading.Thread | None = None


class FaceIndex:
    """Every face template of the province made with one model (`model_version`, `dim`-d vectors), searchable by
    k nearest; refreshed from the table by id. Templates of another model are never loaded: old and new vectors
    never meet in one comparison.

    A retrain (an exact index outgrowing `flat_limit`, an IVF one `RETRAIN_GROWTH` x its training) runs in a
    background thread (`background`, the default) on its own session: the current core keeps answering every
    search, new templates go into it at once, and are replayed onto the new core when it swaps in. Only the very
    first load (nothing to answer with yet) and `rebuild` build in the caller's thread."""

    def __init__(self, batch: int = 50_000, flat_limit: int = FLAT_LIMIT, model_version: str | None = None,
                 dim: int = DIM, background: bool = True) -> None:
        self.batch = batch
        self.flat_limit = flat_limit
        self.model_version = model_version
        self.dim = dim
        self.background = background
        self.rebuilds = 0  # retrains swapped in (or done in place when not in the background)
        self._lock = threading.Lock()
        self._rebuild: _Rebuild | None = None
        self._reset()

    def _reset(self) -> None:
        self._core = VectorIndex(flat_limit=self.flat_limit, dim=self.dim)
        self._template_ids = array("q")
        self._kinds = array("b")
        self._person_ids = array("q")
        self._last_id = 0
        self._rebuild = None  # a retrain in flight is dropped: its thread sees it was superseded

    def _load_since(self, session: Session | None, last_id: int, until: int | None = None
                    ) -> tuple[list[Any], np.ndarray]:
        """Rows (id, kind, person id) and their vectors with `last_id` < id (<= `until`), in id order."""
        assert session is not None
        rows: list[Any] = []
        chunks: list[np.ndarray] = []
        bound = [FaceTemplate.id <= until] if until is not None else []
        while True:
            batch = session.execute(
                select(FaceTemplate.id, FaceTemplate.person_kind, FaceTemplate.person_id, FaceVector.vector,
                       case((or_(FaceVector.vector.is_(None), func.length(FaceVector.vector) != self.dim * 4),
                             cast(FaceTemplate.encoding, Text)), else_=None))
                .outerjoin(FaceVector, FaceVector.template_id == FaceTemplate.id)
                .where(FaceTemplate.id > last_id, *bound, *self._of_model()).order_by(FaceTemplate.id)
                .limit(self.batch)
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

    def _remember(self, rows: Sequence[Any]) -> None:
        for template_id, kind, person_id in rows:
            self._template_ids.append(template_id)
            self._kinds.append(KINDS.index(kind) if kind in KINDS else -1)
            self._person_ids.append(person_id)
        self._last_id = rows[-1][0]

    def refresh(self, session: Session | None) -> int:
        """Load templates added since the last refresh; start a retrain in the background when one is due."""
        with self._lock:
            rows, vectors = self._load_since(session, self._last_id)
            if not rows:
                return 0
            if not self._core.size:  # start-up: nothing to answer with yet
                self._core.build(vectors)
                self._remember(rows)
                return len(rows)
            due = self._rebuild is None and self._core.needs_rebuild(len(rows))
            if due and not self.background:
                self._reset()
                rows, vectors = self._load_since(session, 0)
                self._core.build(vectors)
                self.rebuilds += 1
                self._remember(rows)
                return len(rows)
            self._core.append(vectors)
            if self._rebuild is not None:
                self._rebuild.pending.append(vectors)
            self._remember(rows)
            if due:
                self._start_rebuild(session)
            return len(rows)

    def _start_rebuild(self, session: Session | None) -> None:
        """Under the lock: a thread builds a new core from the templates up to the newest one loaded."""
        job = _Rebuild(self._last_id)
        bind = session.get_bind() if session is not None else None
        if isinstance(bind, Connection):
            bind = bind.engine
        job.thread = threading.Thread(target=self._run_rebuild, args=(job, bind), name="face-index-retrain",
                                      daemon=True)
        self._rebuild = job
        job.thread.start()

    def _load_snapshot(self, bind: Engine | None, upto: int) -> tuple[list[Any], np.ndarray]:
        """Every template up to id `upto`, on a session of its own (the caller's belongs to another thread)."""
        with Session(bind) as session:
            return self._load_since(session, 0, upto)

    def _run_rebuild(self, job: _Rebuild, bind: Engine | None) -> None:
        try:
            rows, vectors = self._load_snapshot(bind, job.upto)
            core = VectorIndex(flat_limit=self.flat_limit, dim=self.dim)
            core.build(vectors)  # the long part (k-means): no lock held, searches go on
            del vectors
            ids = array("q", (r[0] for r in rows))
            kinds = array("b", (KINDS.index(r[1]) if r[1] in KINDS else -1 for r in rows))
            people = array("q", (r[2] for r in rows))
            del rows
            with self._lock:
                early = list(job.pending)
            if early:  # what was enrolled during the build, added to the new index before taking the lock
                core.append(np.concatenate(early))
            with self._lock:  # the swap: replay only what came since (usually nothing), no loop over the table
                if self._rebuild is not job:
                    return  # superseded (rebuild() or a reset) meanwhile
                tail = bisect.bisect_right(self._template_ids, job.upto)
                if len(job.pending) > len(early):
                    core.append(np.concatenate(job.pending[len(early):]))
                ids.extend(self._template_ids[tail:])
                kinds.extend(self._kinds[tail:])
                people.extend(self._person_ids[tail:])
                assert core.size == len(ids), (core.size, len(ids))
                self._core, self._template_ids, self._kinds, self._person_ids = core, ids, kinds, people
                self._rebuild = None
                self.rebuilds += 1
            log.info("face index retrained in the background: %d templates (%s)", core.size, core.kind)
        except Exception:  # noqa: BLE001 - the current core goes on answering; the next refresh tries again
            log.exception("face index retrain failed")
            with self._lock:
                if self._rebuild is job:
                    self._rebuild = None

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for a retrain in flight to swap in (tools and tests); True when none is left running."""
        job = self._rebuild
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self._rebuild is None

    def rebuild(self, session: Session) -> int:
        """Drop everything and load the whole table again (here, in the caller's thread)."""
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

    @property
    def size(self) -> int:
        """Templates searchable now (cheap: `stats` serialises the index to weigh it)."""
        with self._lock:
            return self._core.size

    def stats(self) -> IndexStats:
        with self._lock:
            return IndexStats(self._core.size, self._core.kind, self._core.nbytes(), self._last_id,
                              self._rebuild is not None, self.rebuilds)


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
