"""Configuration from MONITOR_* environment variables, with embedded defaults for one machine."""

import json
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.adapters.audit_keys import AuditKeyring, load_keyring
from monitor.adapters.camera_keys import CameraKeyring, load_camera_keyring
from monitor.adapters.face_models import (
    DEFAULT_FACE_MODEL,
    DEFAULT_MODELS_DIR,
    FaceModel,
    Manifest,
    load_face_model,
    load_manifest,
)
from monitor.adapters.register_keys import RegisterKey, load_register_key
from monitor.decisions.camera_health import CameraLimits
from monitor.decisions.identity_match import DuplicateThresholds
from monitor.decisions.registers import SourceSpec, parse_mapping
from monitor.decisions.verdicts import Thresholds

_REPO = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every tunable of the dispatch center; thresholds are recorded with each verdict."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    data_dir: Path = Field(default=_REPO / "var", description="SQLite file and evidence store live here")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir")
    redis_url: str = Field(default="", description="Redis URL for the Streams bus; empty means in-process")
    faces_dir: Path = Field(default=_REPO.parent / "shared" / "faces", description="sample faces")
    host: str = "127.0.0.1"
    port: int = 8000

    # Upload limits.
    max_body_bytes: int = 15 * 1024 * 1024
    body_deadline_seconds: float = Field(default=300.0, gt=0, description="a request body not whole this long after "
                                         "its headers is answered 408 and its connection closed, however it trickles "
                                         "(15 MB in 5 minutes is 50 KB/s; a 2.4 MB photo needs 8 KB/s)")
    body_timeout_seconds: float = Field(default=30.0, gt=0, description="a request body that sends nothing for "
                                        "this long is answered 408 and dropped")
    max_image_pixels: int = 40_000_000
    max_future_skew_seconds: float = 300.0
    max_capture_age_seconds: float = 24 * 3600.0
    max_accuracy_m: float = 5000.0
    verdict_wait_seconds: float = 6.0
    api_threads: int = Field(default=8, ge=2, le=200, description="threads of an API process for blocking work "
                             "(database, evidence files); more only fight over the GIL (scripts/bench_ingest.py)")

    # Face matching. The embedding model is a manifest (monitor/data/face_models/, README "Face models"): its
    # weights are fetched by scripts/setup.sh and checked by SHA-256; its calibrated operating points are the
    # defaults of the thresholds below, each overridable here (None: the manifest's). All in the model's metric.
    face_model: str = Field(default=DEFAULT_FACE_MODEL, description="manifest name, or the path of a deployment's "
                            "own manifest .json; switching needs `monitor faces re-enrol`")
    face_models_dir: Path = Field(default=DEFAULT_MODELS_DIR, description="where setup puts registry model files")
    face_match_threshold: float | None = Field(default=None, description="1:1 pass (and the trainee the nearest "
                                               "of the roster by cohort_margin)")
    face_mismatch_threshold: float | None = Field(default=None, description="FACE_MISMATCH above")
    proxy_face_max_distance: float | None = Field(default=None, description="PROXY_SIGNIN: classmate's median "
                                                  "distance at most this")
    proxy_face_margin: float | None = Field(default=None, description="PROXY_SIGNIN: classmate nearer by this")
    cohort_margin: float | None = Field(default=None, description="a pass needs every classmate this much farther "
                                        "than the trainee")
    review_sla_minutes: float = Field(default=120.0, gt=0, description="an operator decides each review item within "
                                      "this; older ones are overdue (first in the queue, counted on the wall)")
    face_processes: int = Field(default=-1, description="face worker processes; -1 one per core, 0 in-process")
    enrol_min_face_px: int = 80
    face_min_side_px: int = 60
    face_min_sharpness: float = Field(default=60.0, description="variance of the Laplacian on a 112 px face crop")
    face_min_brightness: float = Field(default=40.0, description="mean grey level 0-255 of the face crop")

    # 1:N duplicate identity (one face under two ID numbers, checked at every enrolment; see
    # monitor/identity_match.py for why these are far stricter than face_match_threshold).
    duplicate_max_distance: float | None = Field(default=None, description="median distance of all photos to one "
                                                 "other person at or below which the enrolment is refused as "
                                                 "DUPLICATE_IDENTITY (the same photo or sitting re-used)")
    duplicate_review_distance: float | None = Field(default=None, description="a photo this close to another "
                                                    "person, short of a clear duplicate, goes to review")
    duplicate_margin: float | None = Field(default=None, description="the next other person must be this much "
                                           "farther")
    duplicate_neighbours: int = Field(default=10, description="k: only the k nearest people per photo are judged")

    # Photo forensics and location plausibility.
    replay_phash_max_distance: int = Field(default=10, description="Hamming bits between 64-bit pHashes")
    exif_max_age_seconds: float = 1800.0
    exif_gps_max_distance_m: float = 1000.0
    gps_max_speed_kmh: float = 250.0
    gps_max_accuracy_m: float = 500.0
    uncertain_fixes_per_day: int = 3
    proxy_device_window_seconds: float = 600.0
    proxy_device_max_trainees: int = 3
    headcount_min_ratio: float = Field(default=0.5, description="faces seen / trainees signed in below this alarms")
    headcount_min_signed_in: int = 3
    liveness_challenge_ttl_seconds: float = 90.0
    # Rate limits on requests that upload nothing (per minute; counted from the stored rows, so across processes).
    challenges_per_device_minute: int = Field(default=6, ge=1, description="liveness challenges one phone may ask for")
    challenges_per_site_minute: int = Field(default=600, ge=1, description="liveness challenges one institution may "
                                            "ask for")
    challenges_open_per_trainee: int = Field(default=3, ge=1, description="unexpired, unanswered challenges a "
                                             "trainee may hold")
    online_sessions_per_device_minute: int = Field(default=6, ge=1)
    online_sessions_per_site_minute: int = Field(default=300, ge=1)
    liveness_blink_min_ear_drop: float = Field(default=0.3, description="(open - closed) / open eye aspect ratio "
                                               "across the burst; relative, as eye shapes differ between people")
    liveness_turn_min_yaw_change: float = Field(default=0.08, description="change of the nose's offset between "
                                                "the eyes, as a share of their distance")
    liveness_still_max_phash_distance: int = Field(default=2, description="a burst whose frames differ by at most "
                                                   "this many pHash bits is one still photo")
    liveness_frame_max_distance: float | None = Field(
        default=None, description="burst frames against the selfie taken the same second: a swapped face shows")

    # Policy rules (clause 十四 and the rule catalogue).
    session_grace_minutes: int = Field(default=30, description="sign-in allowed this early, sign-out this late")
    attendance_grace_minutes: int = Field(default=15, description="NO_SHOW / MISSING_SIGNOUT judged after this")
    silent_after_minutes: int = 30
    two_places_max_minutes: float = Field(default=30.0, description="verified check-ins of one trainee for two "
                                          "classes this close in time…")
    two_places_min_distance_m: float = Field(default=1000.0, description="…and at least this far apart: "
                                             "DOUBLE_ENROLMENT")
    clock_rules: bool = Field(default=True, description="run the clock rules in the worker (tests drive them)")
    min_attendance_rate: float = 0.8
    public_notice_min_rebuild_seconds: float = Field(default=60.0, ge=0, le=3600, description="the public notice "
                                                     "is built again at most this often (the last build answers "
                                                     "meanwhile, with its time)")
    low_attendance_min_sessions: int = 2
    online_max_gap_minutes: float = Field(default=15.0, description="most study one heartbeat can vouch for")
    online_daily_cap_minutes: float = Field(default=480.0, description="clause 六: at most 8 hours a day")

    # Live feed.
    live_recheck_seconds: float = Field(default=10.0, gt=0, le=300, description="a live feed looks its token up "
                                        "again this often: revoked or expired, it is closed; a recusal applies")
    live_ping_seconds: float = Field(default=20.0, gt=0, le=300, description="an idle live feed sends a ping this "
                                     "often; pages that hear nothing for three of these treat the link as dead and "
                                     "reconnect (a half-open connection never closes by itself)")
    live_send_timeout_seconds: float = Field(default=10.0, gt=0, description="a WebSocket client that cannot take "
                                             "one message within this is dropped (it reconnects with its last id)")
    live_ring_events: int = Field(default=5000, ge=100, description="the newest events each API process keeps "
                                  "encoded in memory for its clients (older ones are read from the database)")
    live_max_backlog: int = Field(default=2000, ge=100, description="a client further behind than this many "
                                  "events is told to reload its state instead of replaying them")

    # Dispatch (clauses 七, 十四, 十六).
    dispatch_auto: bool = Field(default=True, description="page an on-duty inspector for every new alert")
    dispatch_accept_minutes: float = Field(default=10.0, gt=0, description="an inspector who does not accept a "
                                           "page within this is passed over: the next one, then the level above")
    dispatch_tries_per_level: int = Field(default=2, ge=1, description="pages at one level (county, prefecture, "
                                          "province) before the alert goes up a level")
    dispatch_high_parallel: int = Field(default=3, ge=1, description="inspectors paged at once for a high-severity "
                                        "alert")
    objection_decide_days: int = Field(default=10, ge=1, le=90, description="calendar days (Asia/Shanghai) the "
                                       "center has to decide an institution's objection (异议) to a finding; past "
                                       "them an undecided objection shows as overdue")
    phone_check_min_trainees: int = Field(default=5, ge=5, description="trainees a phone check must reach (clause "
                                          "十四: not fewer than 5 per class)")
    phone_check_draw: int = Field(default=8, ge=5, le=60, description="trainees drawn for a phone check, so that "
                                  "some may be unreachable")
    sign_in_link_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60, description="how long a one-time sign-in "
                                      "link an admin issues to a staff member stays valid")
    staff_session_hours: float = Field(default=12, gt=0, le=24 * 7, description="how long the session a sign-in link "
                                       "opens lasts (a working day)")
    inspections_per_class_min: int = Field(default=2, ge=2, description="inspections each class must have over its "
                                           "duration (clause 十四: 每期培训班至少进行2次检查)")
    inspection_visit_unit: Literal["day", "session"] = Field(default="day", description="what makes two forms two "
                                                             "visits toward inspections_per_class_min: different "
                                                             "days, or different sessions (of one day too)")
    draw_auto: bool = Field(default=True, description="the worker makes the day's draw at draw_at (or at start-up "
                            "when later), and supplementary draws for classes registered after it")
    draw_at: str = Field(default="08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="the daily draw is "
                         "made at this local time (HH:MM, Asia/Shanghai) on the classes in session that day")
    draw_rate: float = Field(default=1 / 3, gt=0, le=1, description="share of the candidates a draw takes: "
                             "⌈n·rate⌉, at least 1, never all of them unless draw_take_all (a lone candidate is "
                             "drawn with this probability)")
    draw_classes: int = Field(default=10, ge=1, le=1000, description="at most this many classes per draw (双随机)")
    draw_take_all: bool = Field(default=False, description="take every candidate (up to draw_classes): no longer "
                                "random, so off unless a region decides so")
    draw_supplementary_minutes: float = Field(default=60.0, gt=0, description="classes in session that no draw of "
                                              "the day had as candidates enter a supplementary draw this often")
    draw_window_days: int = Field(default=3, ge=1, le=30, description="a draw is published (seed included) once "
                                  "this many days have passed, after its inspections")
    draw_lookback_days: int = Field(default=14, ge=1, le=365, description="anomalies of the last days weigh a class")
    alert_overdue_minutes: float = Field(default=120.0, gt=0, description="an active alert with no step for this long "
                                         "is counted overdue on the wall")
    dispatch_interval_seconds: float = Field(default=5.0, gt=0, description="how often the worker routes new "
                                             "alerts and escalates unanswered pages")

    # The filed form as an archival record (README "The inspection form as an archival record").
    form_font_file: Path = Field(default=Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), description="a "
                                 "TrueType-outline CJK font embedded (subset) in the form's PDF; Debian's "
                                 "fonts-wqy-microhei by default (scripts/setup.sh installs it)")
    form_font_index: int = Field(default=0, ge=0, description="the font's index within a .ttc collection")
    form_signing_key_file: Path | None = Field(default=None, description="the center's private key (PEM) that signs "
                                               "every form PDF (PAdES); default data_dir/form-signing/key.pem, a "
                                               "self-signed development key made at first use")
    form_signing_cert_file: Path | None = Field(default=None, description="its certificate (PEM), then the chain "
                                                "up to the root; default data_dir/form-signing/cert.pem")
    public_url: str = Field(default="http://localhost:8000", description="the center's address as printed on forms: "
                            "their QR code and verify link are PUBLIC_URL/verify/<sha256>")

    # The audit chain's key and anchors, kept outside the database (README "The audit chain").
    audit_keys_file: Path | None = Field(default=None, description="HMAC key file (JSON, owner-only); default "
                                         "data_dir/audit-keys.json, made with a fresh key on first start")
    audit_key: str = Field(default="", description="a 256-bit key in hex from the environment (id `env`), used "
                           "instead of the key file's current key")
    audit_anchor_file: Path | None = Field(default=None, description="append-only file of the chain's head (put it "
                                           "on another volume); default data_dir/audit-anchors.jsonl")
    audit_anchor_interval_seconds: float = Field(default=600.0, gt=0, description="how often the worker anchors "
                                                 "the chain's head when it moved")
    audit_check_interval_seconds: float = Field(default=3600.0, ge=0, description="how often the scheduler verifies "
                                                "the whole chain and every audited row on its own (0: never); the "
                                                "first check a minute after it starts; a failed one is a wall alarm")

    # Register extracts (issue 20 item 1; README "Register cross-checks (clause 八): imports").
    register_mapping: Path | None = Field(default=None, description="the register column mapping (JSON: per source, "
                                          "each field's Chinese header aliases); default monitor/data/registers.json")
    register_key_file: Path | None = Field(default=None, description="the key file of the registers' ID hashes "
                                           "(HMAC-SHA256, owner-only); default data_dir/register-key.json, made on "
                                           "first use")
    register_key: str = Field(default="", description="the registers' HMAC key from the environment (≥ 16 "
                              "characters), used instead of the key file's")
    scheduler: bool = Field(default=True, description="this process may run the scheduler (clock rules, escalation, "
                            "draws, cross-checks, audit sealing and anchors) when it holds the lease: one process at "
                            "a time does")
    scheduler_lease_seconds: float = Field(default=12.0, ge=3, le=300, description="the scheduler lease's term: "
                                           "renewed every third of it; another process takes over once it runs out")
    storage_low_free_mb: int = Field(default=2048, ge=0, description="STORAGE_LOW (health and the wall's alarm) when "
                                     "the evidence store's filesystem has less free space than this (MiB)")
    evidence_check_sample: int = Field(default=300, ge=0, le=1_000_000, description="with each audit check, this "
                                       "many stored evidence files picked at random are hashed against their names "
                                       "(1.3 ms and one read per 2.4 MB photo); an altered or missing one is the "
                                       "wall's EVIDENCE_ALTERED; `monitor evidence verify` checks them all")
    evidence_sweep_minutes: float = Field(default=60.0, gt=0, description="the worker removes evidence files no "
                                          "record names (a rolled-back write) once they are this old, this often")
    crosscheck_repeat_window_days: int = Field(default=365, ge=1, le=3650, description="REPEAT_SUBSIDY: a "
                                               "certificate or subsidised class in the same occupation and level "
                                               "within this many days before a class (the policy window)")
    crosscheck_far_km: float = Field(default=100.0, gt=0, description="EMPLOYED_ELSEWHERE: insured by an employer "
                                     "this far (km, county centre to venue) from the venue during the class")
    crosscheck_lookback_days: int = Field(default=180, ge=1, le=3650, description="classes ended within these days "
                                          "and not yet marked payable are cross-checked again")
    crosscheck_interval_minutes: float = Field(default=360.0, gt=0, description="how often the worker cross-checks "
                                               "those classes against the registers (also after every commit)")
    crosscheck_min_cohort: int = Field(default=10, ge=1, description="an institution's post-training employment "
                                       "rate counts once this many completed trainees can be observed")

    # Classroom cameras (issue 19; README "Classroom cameras").
    cameras_enabled: bool = Field(default=True, description="this process runs a camera puller: frames from every "
                                  "active camera of a class in session, submitted as classroom snapshots")
    camera_key_file: Path | None = Field(default=None, description="the Fernet key file that encrypts cameras' "
                                         "credentials (owner-only); default data_dir/camera-keys.json, made on "
                                         "first use")
    camera_key: str = Field(default="", description="a Fernet key (urlsafe base64) from the environment, used "
                            "instead of the key file's")
    camera_offline_seconds: float = Field(default=300.0, gt=0, description="CAMERA_OFFLINE: a camera of a class in "
                                          "session gave no usable frame for this long")
    camera_frozen_pulls: int = Field(default=3, ge=2, description="FROZEN_FEED: this many pulls in a row showed the "
                                     "previous pull's picture")
    camera_frozen_max_difference: float = Field(default=0.5, ge=0, description="mean absolute difference (grey levels "
                                                "of a 64×36 grey copy) at or below which two pulls are the same "
                                                "picture")
    camera_burst_frames: int = Field(default=5, ge=1, le=50, description="frames read per pull; grey or broken "
                                     "first frames are skipped")
    camera_open_timeout_seconds: float = Field(default=10.0, gt=0, description="opening a stream gives up after this")
    camera_read_timeout_seconds: float = Field(default=10.0, gt=0, description="reading a frame gives up after this")
    camera_backoff_max_seconds: float = Field(default=300.0, gt=0, description="a failing camera is retried after "
                                              "1, 2, 4 … seconds, at most this (and at most its interval)")
    camera_threads: int = Field(default=8, ge=1, le=256, description="cameras pulled at once by one process; a slow "
                                "camera holds one thread, never the others")
    camera_lease_seconds: float = Field(default=120.0, gt=0, description="a puller's claim on a camera (renewed while "
                                        "it pulls); another process takes the camera once it lapses")
    camera_scan_seconds: float = Field(default=2.0, gt=0, description="how often a puller looks for cameras due")

    # Worker.
    max_verification_attempts: int = Field(default=3, ge=1, description="a message whose verification raised this "
                                           "many times ends as VERIFICATION_FAILED instead of being retried")
    max_publish_attempts: int = Field(default=8, ge=2, description="a message published this many times and never "
                                      "processed (e.g. it kills its worker) ends as VERIFICATION_FAILED")
    redeliver_after_seconds: float = 30.0
    bus_claim_idle_seconds: float = Field(default=30.0, gt=0, description="a Redis Streams message a worker took "
                                          "and left unacknowledged this long (it died mid-job) is taken over by a "
                                          "live one")
    relay_interval_seconds: float = 2.0
    clock_interval_seconds: float = 15.0

    def manifest(self) -> Manifest:
        """The configured face model's manifest (the weights are checked when an engine is built)."""
        return load_manifest(self.face_model)

    def load_face_model(self) -> FaceModel:
        """The configured face model with its weights found and checked by SHA-256."""
        return load_face_model(self.face_model, self.face_models_dir)

    def _point(self, name: str, manifest: Manifest) -> float:
        value = getattr(self, name)
        return float(value if value is not None else getattr(manifest.operating_points, name))

    def thresholds(self, manifest: Manifest | None = None) -> Thresholds:
        """The verdict thresholds for `manifest`'s model (the configured one by default), recorded with every
        verification."""
        m = manifest or self.manifest()
        return Thresholds(
            face_match=self._point("face_match_threshold", m), face_mismatch=self._point("face_mismatch_threshold", m),
            proxy_face_max=self._point("proxy_face_max_distance", m),
            proxy_face_margin=self._point("proxy_face_margin", m), cohort_margin=self._point("cohort_margin", m),
            face_min_side_px=self.face_min_side_px, face_min_sharpness=self.face_min_sharpness,
            face_min_brightness=self.face_min_brightness, replay_phash_max_distance=self.replay_phash_max_distance,
            exif_max_age_s=self.exif_max_age_seconds, exif_gps_max_distance_m=self.exif_gps_max_distance_m,
            gps_max_speed_kmh=self.gps_max_speed_kmh, gps_max_accuracy_m=self.gps_max_accuracy_m,
            uncertain_fixes_per_day=self.uncertain_fixes_per_day,
            proxy_device_window_s=self.proxy_device_window_seconds,
            proxy_device_max_trainees=self.proxy_device_max_trainees,
            session_grace_min=self.session_grace_minutes, two_places_max_min=self.two_places_max_minutes,
            two_places_min_distance_m=self.two_places_min_distance_m, headcount_min_ratio=self.headcount_min_ratio,
            headcount_min_signed_in=self.headcount_min_signed_in,
            liveness_frame_max_distance=self._point("liveness_frame_max_distance", m),
            liveness_blink_min_ear_drop=self.liveness_blink_min_ear_drop,
            liveness_turn_min_yaw_change=self.liveness_turn_min_yaw_change,
            liveness_still_max_phash_distance=self.liveness_still_max_phash_distance,
            face_engine=m.name, face_model_sha256=m.source.sha256, metric=m.metric,
        )

    def duplicate_thresholds(self, manifest: Manifest | None = None) -> DuplicateThresholds:
        """The 1:N duplicate-identity limits for `manifest`'s model, recorded with every identity decision."""
        m = manifest or self.manifest()
        return DuplicateThresholds(max_distance=self._point("duplicate_max_distance", m),
                                   review_distance=self._point("duplicate_review_distance", m),
                                   margin=self._point("duplicate_margin", m), neighbours=self.duplicate_neighbours,
                                   metric=m.metric)

    @property
    def sqlalchemy_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'monitor.sqlite3').as_posix()}"

    @property
    def audit_keys_path(self) -> Path:
        return self.audit_keys_file or self.data_dir / "audit-keys.json"

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor_file or self.data_dir / "audit-anchors.jsonl"

    def audit_keyring(self, create: bool = True) -> AuditKeyring:
        """The audit HMAC keys (the key file, made on first use, and the environment's key)."""
        return load_keyring(self.audit_keys_path, self.audit_key, create)

    def camera_keyring(self, create: bool = True) -> CameraKeyring:
        """The key that encrypts cameras' credentials (the key file, made on first use, or the environment's key)."""
        return load_camera_keyring(self.camera_key_file or self.data_dir / "camera-keys.json", self.camera_key, create)

    def register_hash_key(self, create: bool = True) -> RegisterKey:
        """The key of the registers' ID hashes (the environment's, or the key file made on first use)."""
        return load_register_key(self.register_key_file or self.data_dir / "register-key.json", self.register_key,
                                 create)

    def register_specs(self) -> dict[str, SourceSpec]:
        """The register sources and their column mapping (MONITOR_REGISTER_MAPPING, or the shipped file)."""
        path = self.register_mapping or _REPO / "monitor" / "data" / "registers.json"
        return parse_mapping(json.loads(path.read_text(encoding="utf-8")))

    def camera_limits(self) -> CameraLimits:
        return CameraLimits(offline_seconds=self.camera_offline_seconds, frozen_pulls=self.camera_frozen_pulls,
                            frozen_max_difference=self.camera_frozen_max_difference)

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    @property
    def form_signing_paths(self) -> tuple[Path, Path, bool]:
        """The form-signing key and certificate files, and whether a development pair may be made there when missing
        (only at the default place: a configured key that is missing is an error, never silently replaced)."""
        default = self.data_dir / "form-signing"
        key = self.form_signing_key_file or default / "key.pem"
        cert = self.form_signing_cert_file or default / "cert.pem"
        return key, cert, self.form_signing_key_file is None and self.form_signing_cert_file is None
