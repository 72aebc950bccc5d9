"""The key that encrypts classroom cameras' credentials (the user and password of an RTSP URL), kept outside the
database like the audit chain's keys: a key file under the data directory, made owner-only with a fresh Fernet key
on first use, or one key from the environment (`MONITOR_CAMERA_KEY`, e.g. from a secret store).

Someone who reads the database (a dump, a backup) gets only Fernet tokens; the cameras' passwords need the key too.
Credentials are decrypted only in the puller, the moment a stream is opened, and never returned nor logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from monitor.adapters.audit_keys import create_private

ENV_KEY_ID = "env"


class CameraKeyError(Exception):
    """The credentials cannot be decrypted: the key that encrypted them is not here (or they were altered)."""


@dataclass(frozen=True)
class CameraKeyring:
    """Fernet keys by id, and the one new credentials are encrypted with."""

    current_id: str
    keys: dict[str, bytes]

    def encrypt(self, username: str, password: str) -> tuple[str, str]:
        """(token, key id) for a user and password."""
        token = Fernet(self.keys[self.current_id]).encrypt(
            json.dumps({"username": username, "password": password}).encode("utf-8"))
        return token.decode("ascii"), self.current_id

    def decrypt(self, token: str, key_id: str | None) -> tuple[str, str]:
        """(username, password) from a token made by `encrypt`."""
        key = self.keys.get(key_id or self.current_id)
        if key is None:
            raise CameraKeyError(f"camera key {key_id!r} is not in the keyring")
        try:
            data = json.loads(Fernet(key).decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise CameraKeyError("camera credentials cannot be decrypted with the key") from exc
        return str(data.get("username", "")), str(data.get("password", ""))


def _parse(text: str) -> CameraKeyring:
    data = json.loads(text)
    return CameraKeyring(str(data["current"]), {str(k): str(v).encode("ascii") for k, v in data["keys"].items()})


def load_camera_keyring(path: Path, env_key: str = "", create: bool = True) -> CameraKeyring:
    """The key file at `path` (created owner-only with a fresh key when absent and `create`); a key given in the
    environment (Fernet's urlsafe base64) is added as id `env` and becomes current."""
    if path.is_file():
        ring = _parse(path.read_text(encoding="utf-8"))
    elif create and not env_key:
        ring = _parse(create_private(path, json.dumps({"current": "c1", "keys": {"c1": Fernet.generate_key().decode(
            "ascii")}}) + "\n"))
    else:
        ring = CameraKeyring("", {})
    if env_key:
        Fernet(env_key.encode("ascii"))  # a malformed key fails here, at start-up, not at the first camera
        ring = CameraKeyring(ENV_KEY_ID, {**ring.keys, ENV_KEY_ID: env_key.encode("ascii")})
    return ring
