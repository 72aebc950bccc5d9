"""The dependencies every route of the center declares: the database, settings, evidence store, face engine,
enrolment service (all put on the app by the composition root), and the scopes of the usual roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.adapters.evidence import EvidenceStore
from models.domain import Role
from models.scope import CENTER_ROLES, Scope, access
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.storage import Database
from monitor.services.identity import Enrolment
from monitor.settings import Settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_evidence(request: Request) -> EvidenceStore:
    evidence: EvidenceStore = request.app.state.evidence
    return evidence


def get_engine(request: Request) -> FaceEngine | ProcessFaceEngine:
    engine: FaceEngine | ProcessFaceEngine = request.app.state.engine
    return engine


def get_enrolment(request: Request) -> Enrolment:
    enrolment: Enrolment = request.app.state.enrolment
    return enrolment


Db = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EvidenceDep = Annotated[EvidenceStore, Depends(get_evidence)]
EngineDep = Annotated[FaceEngine | ProcessFaceEngine, Depends(get_engine)]
EnrolmentDep = Annotated[Enrolment, Depends(get_enrolment)]

Admin = Annotated[Scope, access(Role.ADMIN)]
Reader = Annotated[Scope, access(*CENTER_ROLES)]  # the center's roles (operators, admins, auditors, inspectors)
Center = Reader
