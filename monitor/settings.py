"""Configuration from MONITOR_* environment variables, with embedded defaults for one machine."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    max_image_pixels: int = 40_000_000
    max_future_skew_seconds: float = 300.0
    max_capture_age_seconds: float = 24 * 3600.0
    max_accuracy_m: float = 5000.0
    verdict_wait_seconds: float = 6.0

    # Face matching (face_recognition distances; the sample photos give <= 0.53 same, >= 0.70 other).
    face_match_threshold: float = 0.6
    face_detect_max_side_px: int = 1024
    enrol_min_face_px: int = 60
    face_min_px: int = 40

    # Worker.
    redeliver_after_seconds: float = 30.0
    relay_interval_seconds: float = 2.0
    clock_interval_seconds: float = 15.0

    @property
    def sqlalchemy_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'monitor.sqlite3').as_posix()}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"
