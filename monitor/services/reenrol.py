"""Re-enrolment after a change of face model: every stored enrolment photo embedded again with the new model.

The templates of record stay (they are evidence, and a deployment may switch back); a new template is added per
(person, enrolment photo) for the new model, in batches, each batch in one transaction. A photo that already has
a template of the new model is skipped, so an interrupted run resumes where it stopped. Old and new templates
never meet: every comparison reads the templates of the engine's own model only. The 1:N check is not run again
here: these photos were checked when they were enrolled; new enrolments are checked with the new model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from ingest.adapters.evidence import EvidenceStore
from models.clock import utc_now
from models.tables import FaceTemplate
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.face_tables import FaceVector, vector_bytes
from monitor.adapters.storage import Database


@dataclass(frozen=True)
class PhotoToEmbed:
    person_kind: str
    person_id: int
    photo_sha256: str


@dataclass
class ReenrolProgress:
    """Where a re-enrolment stands: photos to do in all, done, added, refused (with why), seconds spent."""

    total: int
    done: int = 0
    added: int = 0
    refused: list[tuple[PhotoToEmbed, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else 0.0


def photos_without_template(db: Database, model_version: str) -> list[PhotoToEmbed]:
    """Each (person, enrolment photo) that has a template of another model and none of `model_version`."""
    mine = aliased(FaceTemplate)
    with db.session() as session:
        rows = session.execute(
            select(FaceTemplate.person_kind, FaceTemplate.person_id, FaceTemplate.photo_sha256,
                   func.min(FaceTemplate.id).label("first"))
            .where(FaceTemplate.model_version != model_version,
                   ~exists().where(and_(mine.person_kind == FaceTemplate.person_kind,
                                        mine.person_id == FaceTemplate.person_id,
                                        mine.photo_sha256 == FaceTemplate.photo_sha256,
                                        mine.model_version == model_version)))
            .group_by(FaceTemplate.person_kind, FaceTemplate.person_id, FaceTemplate.photo_sha256)
            .order_by("first")).all()
    return [PhotoToEmbed(r.person_kind, r.person_id, r.photo_sha256) for r in rows]


def _batches(items: list[PhotoToEmbed], size: int) -> Iterator[list[PhotoToEmbed]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def reenrol(db: Database, evidence: EvidenceStore, engine: FaceEngine | ProcessFaceEngine, batch: int = 50,
            on_progress: Callable[[ReenrolProgress], None] | None = None) -> ReenrolProgress:
    """Embed every enrolment photo lacking a template of `engine`'s model; resumable (see the module text)."""
    todo = photos_without_template(db, engine.model_version)
    progress = ReenrolProgress(total=len(todo))
    started = time.monotonic()
    with ThreadPoolExecutor(max(1, engine.processes)) as pool:
        for chunk in _batches(todo, batch):
            scans = list(pool.map(lambda p: engine.scan(evidence.get(p.photo_sha256), "enrolment"), chunk))
            with db.session() as session:
                for photo, scan in zip(chunk, scans, strict=True):
                    if len(scan.faces) != 1:
                        progress.refused.append((photo, f"照片中检测到 {len(scan.faces)} 张人脸"))
                        continue
                    template = FaceTemplate(person_kind=photo.person_kind, person_id=photo.person_id,
                                            encoding=scan.faces[0].encoding, photo_sha256=photo.photo_sha256,
                                            model_version=engine.model_version, created_at=utc_now())
                    session.add(template)
                    session.flush()
                    session.add(FaceVector(template_id=template.id, vector=vector_bytes(scan.faces[0].encoding)))
                    progress.added += 1
            progress.done += len(chunk)
            progress.seconds = time.monotonic() - started
            if on_progress is not None:
                on_progress(progress)
    progress.seconds = time.monotonic() - started
    return progress


def template_counts(db: Database) -> dict[str, int]:
    """Templates per model version."""
    with db.session() as session:
        return {mv: n for mv, n in session.execute(
            select(FaceTemplate.model_version, func.count()).group_by(FaceTemplate.model_version))}
