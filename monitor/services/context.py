"""What every verification step uses: settings and thresholds, the database, evidence store, face engine and the
near-copy index; built once by the worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.adapters.evidence import EvidenceStore
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.photo_index import PhotoHashIndex
from monitor.adapters.storage import Database
from monitor.adapters.template_cache import TeacherTemplates
from monitor.decisions.verdicts import Thresholds
from monitor.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    evidence: EvidenceStore
    engine: FaceEngine | ProcessFaceEngine
    photo_index: PhotoHashIndex = field(default_factory=PhotoHashIndex)
    teacher_templates: TeacherTemplates = field(default_factory=TeacherTemplates)
    thresholds: Thresholds = field(init=False)

    def __post_init__(self) -> None:
        self.thresholds = self.settings.thresholds(self.engine.model.manifest)
