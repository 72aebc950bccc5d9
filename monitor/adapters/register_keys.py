"""The key that turns register extracts' ID numbers into keyed hashes (issue 20, clause 八 "within the rules on
data security"), kept outside the database like the audit chain's and the cameras' keys: a key file under the data
directory, made owner-only with 32 random bytes on first use, or one key from the environment
(`MONITOR_REGISTER_KEY`, e.g. from a secret store).

Registers need only equality (is this trainee insured, certified, holding this voucher?), so an ID number is kept
as HMAC-SHA256(key, number): a dump of the database gives no ID number, and without the key not even a guess of
one can be confirmed (the 18-digit space is small enough to enumerate against a plain hash). Whole numbers are
never stored nor logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from models.identity import normalise_id_number
from monitor.adapters.audit_keys import create_private

ENV_KEY_ID = "env"


@dataclass(frozen=True)
class RegisterKey:
    key_id: str
    secret: bytes

    def hash_id(self, id_number: str) -> str:
        """The keyed hash (64 hex characters) of a normalised ID number (upper-case X, no spaces)."""
        value = normalise_id_number(id_number).encode("ascii", "replace")
        return hmac.new(self.secret, value, hashlib.sha256).hexdigest()


def load_register_key(path: Path, env_key: str = "", create: bool = True) -> RegisterKey:
    """The environment's key (its UTF-8 bytes; at least 16 characters) when given, else the key file at `path`
    (created owner-only with a fresh random key when absent and `create`)."""
    if env_key:
        if len(env_key) < 16:
            raise ValueError("MONITOR_REGISTER_KEY must be at least 16 characters")
        return RegisterKey(ENV_KEY_ID, env_key.encode("utf-8"))
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    elif not create:
        raise FileNotFoundError(f"register key file {path} is missing")
    else:  # the first writer's key, if another process made one at the same moment
        text = create_private(path, json.dumps({"key_id": "r1", "key": secrets.token_bytes(32).hex()}) + "\n")
    data = json.loads(text)
    return RegisterKey(str(data["key_id"]), bytes.fromhex(str(data["key"])))
