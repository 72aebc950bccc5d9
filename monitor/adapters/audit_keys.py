"""The audit chain's secrets and witnesses outside the database: the HMAC keys (a key file, or one key from the
environment), rotated with a recorded key id, and the append-only anchors file of the chain's head (seq, hash).

Someone who can rewrite the database but holds neither the key file nor the anchors cannot rewrite an entry and
re-hash the chain after it unnoticed: without the key the HMACs do not verify; with a stolen key the anchors
written before the rewrite still contradict it (`monitor audit verify --against ANCHORS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models.audit_chain import Anchor

ENV_KEY_ID = "env"


@dataclass(frozen=True)
class AuditKeyring:
    """The keys by id, and the one new entries are sealed with."""

    current_id: str
    keys: dict[str, bytes]

    @property
    def current(self) -> tuple[str, bytes]:
        return self.current_id, self.keys[self.current_id]


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only, whole or not at all (a rotated keyring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # owner-only, unique per writer
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def create_private(path: Path, text: str) -> str:
    """Create `path` with `text`, owner-only, unless it exists; the text the file then holds. Two processes making
    a key at once both end up with the one that was written first (a hard link cannot replace a file), never each
    with its own: data sealed, hashed or encrypted with a lost key could never be read again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        os.unlink(partial)
    return path.read_text(encoding="utf-8")


def _text(ring: AuditKeyring) -> str:
    return json.dumps({"current": ring.current_id, "keys": {k: v.hex() for k, v in ring.keys.items()}}, indent=2) + "\n"


def _parse(text: str) -> AuditKeyring:
    data = json.loads(text)
    return AuditKeyring(str(data["current"]), {str(k): bytes.fromhex(v) for k, v in data["keys"].items()})


def load_keyring(path: Path, env_key: str = "", create: bool = True) -> AuditKeyring:
    """The key file at `path` (created with a fresh 256-bit key, readable by its owner only, when absent and
    `create`); a key given in the environment (hex) is added as id `env` and becomes current."""
    if path.is_file():
        ring = _parse(path.read_text(encoding="utf-8"))
    elif create:
        ring = _parse(create_private(path, _text(AuditKeyring("k1", {"k1": secrets.token_bytes(32)}))))
    else:
        ring = AuditKeyring("", {})
    if env_key:
        ring = AuditKeyring(ENV_KEY_ID, {**ring.keys, ENV_KEY_ID: bytes.fromhex(env_key)})
    return ring


def rotate_key(path: Path) -> AuditKeyring:
    """Add a fresh key and seal new entries with it; old keys stay to verify what they sealed."""
    ring = load_keyring(path)
    n = 1 + max((int(k[1:]) for k in ring.keys if k.startswith("k") and k[1:].isdigit()), default=0)
    new_id = f"k{n}"
    ring = AuditKeyring(new_id, {**ring.keys, new_id: secrets.token_bytes(32)})
    write_private(path, _text(ring))
    return ring


def append_anchor(path: Path, seq: int, digest: str, at: datetime, key_id: str | None) -> None:
    """One line appended (and synced) to the anchors file: the chain's head at `at`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"seq": seq, "hash": digest, "at": at.isoformat(), "key_id": key_id}) + "\n"
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor of an anchors file, in the order written (lines that do not parse are skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            out.append(Anchor(int(data["seq"]), str(data["hash"]), str(data["at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out
