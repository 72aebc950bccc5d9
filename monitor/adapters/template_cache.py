"""Every teacher's face templates of one model, parsed once per process and re-read when the table has changed."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from models.tables import FaceTemplate


class TeacherTemplates:
    """The teachers' templates of one model as (person ids, one float64 row per template), for the classroom
    snapshots, which look for every teacher of the province (another class's teacher standing in).

    Before each use one indexed query reads the rows' version in the database, their count and highest id: a
    template enrolled by any process changes it, so the cache is never older than the table. Templates are only
    appended: new ones are loaded by id; a count that does not add up (a row removed) reloads them all.
    """

    def __init__(self, kind: str = "teacher") -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._model: str | None = None
        self._count = self._last_id = 0
        self._people: list[int] = []
        self._rows: list[np.ndarray] = []
        self._matrix = np.zeros((0, 0))
        self.loads = 0  # queries that read template rows (tests and the benchmark)

    def get(self, session: Session, model_version: str) -> tuple[list[int], np.ndarray]:
        """(person id per template, their encodings as rows), templates in id order."""
        count, last_id = session.execute(select(func.count(), func.max(FaceTemplate.id)).where(
            FaceTemplate.person_kind == self.kind, FaceTemplate.model_version == model_version)).one()
        count, last_id = int(count), int(last_id or 0)
        with self._lock:
            if (model_version, count, last_id) == (self._model, self._count, self._last_id):
                return self._people, self._matrix
            if model_version != self._model or last_id < self._last_id:
                self._model, self._count, self._last_id, self._people, self._rows = model_version, 0, 0, [], []
            new = self._load(session, model_version, self._last_id, last_id)
            if self._count + len(new) != count:  # not only appended: read them all again
                self._count, self._people, self._rows = 0, [], []
                new = self._load(session, model_version, 0, last_id)
            for (person_id, _), encoding in zip(new, parse_vectors([e for _, e in new]), strict=True):
                self._people.append(person_id)
                self._rows.append(encoding)
            self._count, self._last_id = len(self._people), last_id
            self._matrix = np.vstack(self._rows) if self._rows else np.zeros((0, 0))
            return self._people, self._matrix

    def _load(self, session: Session, model_version: str, after: int, upto: int) -> list[tuple[int, str]]:
        self.loads += 1
        return [(int(p), e) for p, e in session.execute(
            select(FaceTemplate.person_id, cast(FaceTemplate.encoding, Text)).where(
                FaceTemplate.person_kind == self.kind, FaceTemplate.model_version == model_version,
                FaceTemplate.id > after, FaceTemplate.id <= upto).order_by(FaceTemplate.id))]


def parse_vectors(texts: Sequence[str]) -> list[np.ndarray]:
    """Stored encodings (JSON float lists of one model, so of one length) as float64 rows, parsed in C in one pass:
    the same doubles `json.loads` gives, about ten times faster than it for a class's templates."""
    if not texts:
        return []
    dim = texts[0].count(",") + 1
    values = np.fromstring(",".join(t.strip()[1:-1] for t in texts), dtype=np.float64, sep=",")
    if values.size != len(texts) * dim:  # an odd row: one by one
        return [np.asarray(json.loads(t), dtype=np.float64) for t in texts]
    return list(values.reshape(len(texts), dim))
