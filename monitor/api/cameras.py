"""Classroom cameras registered per venue (issue 19): admins register, change and remove them; the center's roles
read them within their scope. A stream's user and password are stored encrypted with a key kept outside the
database and never answered: the URL is shown without them, with `has_credentials`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import AnomalyCode, InputModel
from models.errors import ApiError, errors
from models.scope import Scope, refuse_missing, venue_clause
from models.tables import Camera, CameraHealth, Venue
from monitor.adapters.camera_keys import CameraKeyError, CameraKeyring
from monitor.adapters.camera_stream import StreamUrlError, split_credentials
from monitor.api.common import insert
from monitor.api.deps import Admin, Db, Reader
from monitor.services.alerts import resolve_anomaly
from monitor.services.cameras import camera_health_out, ensure_health, open_anomalies

router = APIRouter(prefix="/api/v1", tags=["cameras"])

Kind = Literal["rtsp", "http", "hls", "file"]
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CameraIn(InputModel):
    name: str = Field(min_length=1, max_length=100, description="e.g. 302 教室前")
    stream_url: str = Field(min_length=1, max_length=500, description="rtsp://host/… (a user and password in it "
                            "are taken out and stored encrypted), http(s)://… MJPEG, …/index.m3u8 (HLS), a file path")
    kind: Kind = "rtsp"
    username: str | None = Field(default=None, max_length=100, description="instead of putting it in the URL")
    password: str | None = Field(default=None, max_length=200, description="stored encrypted, never answered")
    interval_seconds: int = Field(default=300, ge=1, le=3600, description="a frame every this many seconds")
    active: bool = True


class CameraPatch(InputModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    stream_url: str | None = Field(default=None, min_length=1, max_length=500)
    kind: Kind | None = None
    username: str | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, max_length=200)
    interval_seconds: int | None = Field(default=None, ge=1, le=3600)
    active: bool | None = None


class CameraOut(BaseModel):
    id: int
    venue_id: int
    name: str
    stream_url: str
    kind: str
    has_credentials: bool
    interval_seconds: int
    active: bool
    created_at: datetime


class CameraHealthOut(BaseModel):
    camera_id: int
    active: bool
    state: str
    since: str | None
    last_frame_at: str | None
    last_attempt_at: str | None
    last_error: str | None
    failures: int
    same_frames: int
    last_snapshot_id: int | None
    next_pull_at: str | None
    open_anomalies: list[str]


def get_keyring(request: Request) -> CameraKeyring:
    keyring: CameraKeyring = request.app.state.camera_keyring
    return keyring


Keyring = Annotated[CameraKeyring, Depends(get_keyring)]


def camera_out(c: Camera) -> dict[str, Any]:
    return {"id": c.id, "venue_id": c.venue_id, "name": c.name, "stream_url": c.stream_url, "kind": c.kind,
            "has_credentials": bool(c.credentials_encrypted), "interval_seconds": c.interval_seconds,
            "active": c.active, "created_at": c.created_at}


def venue_in_scope(session: Session, scope: Scope, venue_id: int) -> Venue:
    venue = session.scalar(select(Venue).where(Venue.id == venue_id, venue_clause(scope)))
    if venue is None:
        raise refuse_missing("UNKNOWN_VENUE", "场地", venue_id)
    return venue


def camera_in_scope(session: Session, scope: Scope, camera_id: int) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None or session.scalar(select(Venue.id).where(Venue.id == camera.venue_id,
                                                               venue_clause(scope))) is None:
        raise refuse_missing("UNKNOWN_CAMERA", "摄像头", camera_id)
    return camera


def set_stream(camera: Camera, url: str, kind: str, username: str | None, password: str | None,
               keyring: CameraKeyring) -> None:
    """The stream without credentials; the credentials (from the URL, or given apart) encrypted."""
    try:
        clean, url_user, url_password = split_credentials(url, kind)
    except StreamUrlError as exc:
        raise ApiError(422, "INVALID_STREAM_URL", str(exc)) from None
    user = username if username is not None else url_user
    secret = password if password is not None else url_password
    camera.stream_url, camera.kind = clean, kind
    if user or secret:
        camera.credentials_encrypted, camera.key_id = keyring.encrypt(user, secret)
    else:
        camera.credentials_encrypted, camera.key_id = None, None


@router.post("/venues/{venue_id}/cameras", status_code=201, response_model=CameraOut, responses=errors(404, 409),
             summary="Register a classroom camera of a venue")
def create_camera(venue_id: IdPath, body: CameraIn, scope: Admin, db: Db, keyring: Keyring) -> dict[str, Any]:
    with db.session() as session:
        venue_in_scope(session, scope, venue_id)
        camera = Camera(venue_id=venue_id, name=body.name.strip(), interval_seconds=body.interval_seconds,
                        active=body.active, created_at=utc_now())
        set_stream(camera, body.stream_url, body.kind, body.username, body.password, keyring)
        row = insert(session, camera, "DUPLICATE_CAMERA", "该场地已有同名摄像头")
        ensure_health(session, row.id, row.created_at)
        return camera_out(row)


@router.get("/venues/{venue_id}/cameras", response_model=list[CameraOut], responses=errors(404),
            summary="A venue's cameras")
def list_cameras(venue_id: IdPath, scope: Reader, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        venue_in_scope(session, scope, venue_id)
        return [camera_out(c) for c in session.scalars(select(Camera).where(Camera.venue_id == venue_id)
                                                        .order_by(Camera.id))]


@router.patch("/cameras/{camera_id}", response_model=CameraOut, responses=errors(404, 409),
              summary="Change a camera (stream, credentials, interval, active)")
def update_camera(camera_id: IdPath, body: CameraPatch, scope: Admin, db: Db, keyring: Keyring) -> dict[str, Any]:
    with db.session() as session:
        camera = camera_in_scope(session, scope, camera_id)
        if body.name is not None:
            camera.name = body.name.strip()
        if body.interval_seconds is not None:
            camera.interval_seconds = body.interval_seconds
        if body.active is not None:
            camera.active = body.active
        if body.stream_url is not None or body.kind is not None:
            set_stream(camera, body.stream_url or camera.stream_url, body.kind or camera.kind, body.username,
                       body.password, keyring)
        elif body.username is not None or body.password is not None:  # new credentials for the same stream
            old_user = old_password = ""
            if camera.credentials_encrypted:
                try:
                    old_user, old_password = keyring.decrypt(camera.credentials_encrypted, camera.key_id)
                except CameraKeyError:
                    raise ApiError(409, "CAMERA_KEY_MISSING",
                                   "原凭据无法用当前密钥解密，请同时提供用户名和密码") from None
            set_stream(camera, camera.stream_url, camera.kind, body.username if body.username is not None
                       else old_user, body.password if body.password is not None else old_password, keyring)
        health = session.get(CameraHealth, camera.id)
        if health is not None:
            health.next_pull_at = None  # look at the changed camera at the next scan
        try:
            session.flush()
        except IntegrityError as exc:  # the unique (venue, name)
            raise ApiError(409, "DUPLICATE_CAMERA", "该场地已有同名摄像头") from exc
        return camera_out(camera)


@router.delete("/cameras/{camera_id}", status_code=204, responses=errors(404), summary="Remove a camera")
def delete_camera(camera_id: IdPath, scope: Admin, db: Db) -> Response:
    with db.session() as session:
        camera = camera_in_scope(session, scope, camera_id)
        for rule in (AnomalyCode.CAMERA_OFFLINE, AnomalyCode.FROZEN_FEED):
            for anomaly in open_anomalies(session, camera.id, rule):
                resolve_anomaly(session, anomaly, "摄像头已删除")
        health = session.get(CameraHealth, camera.id)
        if health is not None:
            session.delete(health)
            session.flush()
        session.delete(camera)
    return Response(status_code=204)


@router.get("/cameras/{camera_id}/health", response_model=CameraHealthOut, responses=errors(404),
            summary="A camera's state (ok, offline, frozen, idle), last frame and error")
def camera_health(camera_id: IdPath, scope: Reader, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return camera_health_out(session, camera_in_scope(session, scope, camera_id))

