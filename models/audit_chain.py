"""The audit chain's arithmetic (clause 十三: 全程留痕可追溯): each entry is signed when it is written (an HMAC of
its content with the audit key), each entry's hash covers its content, its signature and the hash before it;
verifying names the first entry that was changed, removed, put out of order, or written by someone without the key;
pure functions."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> Any:
    """The JSON form an entry's detail is stored and hashed in (keys sorted, non-JSON values as text)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False, sort_keys=True))


def sign_entry(key_id: str, key: bytes, nonce: str, at_iso: str, actor: str, actor_role: str, token_id: int | None,
               action: str, subject_kind: str, subject_id: str, detail: Any) -> str:
    """An entry's signature as its writer makes it, before it has a place in the chain: `key_id:nonce:mac`, the mac
    an HMAC-SHA256 with the audit key over every field and a random `nonce` (hex), so that two entries with the
    same content still differ and a copied entry shows as a copy. Someone who can write the database but does not
    hold the key cannot make one, so an entry slipped in for the sealer to chain shows as forged."""
    fields = [key_id, nonce, at_iso, actor, actor_role, token_id, action, subject_kind, subject_id, detail]
    # (default=str: the same text as for `canonical(detail)`, without a round trip through it)
    body = json.dumps(fields, default=str, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"{key_id}:{nonce}:{hmac.new(key, body, hashlib.sha256).hexdigest()}"


def signature_key_id(signature: str) -> str:
    """The id of the key a signature was made with (ids may hold ':'; nonce and mac do not)."""
    return signature.rsplit(":", 2)[0]


def signature_holds(signature: str, keys: Mapping[str, bytes], at_iso: str, actor: str, actor_role: str,
                    token_id: int | None, action: str, subject_kind: str, subject_id: str, detail: Any) -> bool:
    """Whether `signature` is the one the holder of its key made for exactly these fields (False when the key is
    not in `keys`: callers tell that case apart with `signature_key_id`)."""
    parts = signature.rsplit(":", 2)
    if len(parts) != 3 or parts[0] not in keys:
        return False
    key_id, nonce, _ = parts
    expected = sign_entry(key_id, keys[key_id], nonce, at_iso, actor, actor_role, token_id, action, subject_kind,
                          subject_id, detail)
    return hmac.compare_digest(expected, signature)


def seal_record(key_id: str, key: bytes, fields: Any) -> str:
    """A record's seal outside the chain (`key_id:mac`, the mac an HMAC-SHA256 with the audit key over `fields` as
    canonical JSON): for rows rewritten in place, such as a cache others are served from, which someone who can
    write the database but does not hold the key cannot seal again."""
    body = json.dumps(fields, default=str, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"{key_id}:{hmac.new(key, body, hashlib.sha256).hexdigest()}"


def seal_holds(seal: str | None, keys: Mapping[str, bytes], fields: Any) -> bool:
    """Whether `seal` is `seal_record`'s for exactly `fields` with one of `keys` (False for none or an unknown key)."""
    if not seal or ":" not in seal:
        return False
    key_id = seal.rsplit(":", 1)[0]
    return key_id in keys and hmac.compare_digest(seal_record(key_id, keys[key_id], fields), seal)


def entry_hash(prev_hash: str, seq: int, at_iso: str, actor: str, actor_role: str, action: str, subject_kind: str,
               subject_id: str, detail: Any, token_id: int | None = None, key: bytes | None = None,
               key_id: str | None = None, signature: str | None = None) -> str:
    """The entry's digest over the previous hash and its every field (the acting token's id when there is one, so
    entries written before tokens were recorded keep their digests): HMAC-SHA256 with the audit key `key` (named
    `key_id`, which is covered too) kept outside the database, so that someone who can write the database but
    does not hold the key cannot re-hash a rewritten chain; plain SHA-256 for entries sealed before keys. The
    writer's signature is covered when there is one (entries written before signatures keep their digests)."""
    fields = [prev_hash, seq, at_iso, actor, actor_role, action, subject_kind, subject_id, canonical(detail)]
    if token_id is not None:
        fields.append(token_id)
    if key_id is not None:
        fields.append(key_id)
    if signature is not None:
        fields.append({"signature": signature})  # an object: no earlier field list ends with one
    body = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Link:
    """One stored entry as verification reads it."""

    seq: int
    at_iso: str
    actor: str
    actor_role: str
    action: str
    subject_kind: str
    subject_id: str
    detail: Any
    prev_hash: str
    hash: str
    token_id: int | None = None
    key_id: str | None = None
    signature: str | None = None


@dataclass(frozen=True)
class Break:
    """Where the chain first fails: the entry (by sequence number), what is wrong, in zh-CN."""

    seq: int
    kind: str  # changed | missing | out_of_order | head | key | anchor | unsigned | forged | copied
    message: str


@dataclass(frozen=True)
class Anchor:
    """The chain's head noted outside the database at one moment: (seq, hash) and when."""

    seq: int
    hash: str
    at_iso: str


def verify_chain(links: Iterable[Link], head_seq: int, head_hash: str, keys: Mapping[str, bytes] | None = None,
                 anchors: Iterable[Anchor] = ()) -> tuple[int, Break | None]:
    """Walk the entries in sequence order: (entries checked, the first break or None). Keyed entries are checked
    with their key from `keys`; every entry after the first signed one must carry its writer's valid signature;
    every anchor must name an entry that is there with exactly the anchored hash."""
    keys = keys or {}
    pinned: dict[int, Anchor] = {}
    for anchor in anchors:
        pinned.setdefault(anchor.seq, anchor)
    expected_seq, prev = 1, GENESIS
    checked, signed = 0, False
    for link in links:
        if link.seq != expected_seq:
            if link.seq > expected_seq:
                return checked, Break(expected_seq, "missing",
                                      f"第 {expected_seq} 条记录缺失或被删除（下一条为第 {link.seq} 条）")
            return checked, Break(link.seq, "out_of_order", f"第 {link.seq} 条记录顺序错乱")
        if link.prev_hash != prev:
            return checked, Break(link.seq, "out_of_order", f"第 {link.seq} 条记录与前一条的链接不符（被调换或插入）")
        if link.key_id is not None and link.key_id not in keys:
            return checked, Break(link.seq, "key", f"第 {link.seq} 条记录以密钥 {link.key_id} 封链，核验方没有该密钥")
        key = keys.get(link.key_id) if link.key_id is not None else None
        digest = entry_hash(link.prev_hash, link.seq, link.at_iso, link.actor, link.actor_role, link.action,
                            link.subject_kind, link.subject_id, link.detail, link.token_id, key, link.key_id,
                            link.signature)
        if not hmac.compare_digest(digest, link.hash):
            return checked, Break(link.seq, "changed", f"第 {link.seq} 条记录的内容已被改动（哈希不符）")
        if (problem := signature_break(link, keys, signed)) is not None:
            return checked, problem
        signed = signed or link.signature is not None
        noted = pinned.pop(link.seq) if link.seq in pinned else None
        if noted is not None and noted.hash != link.hash:
            return checked, Break(link.seq, "anchor", f"第 {link.seq} 条记录与 {noted.at_iso} 记在库外的锚点不符"
                                                       "（此前的记录被改写后重新计算了哈希）")
        checked += 1
        expected_seq, prev = link.seq + 1, link.hash
    if pinned:
        first = min(pinned.values(), key=lambda a: a.seq)
        return checked, Break(first.seq, "anchor", f"{first.at_iso} 记在库外的锚点第 {first.seq} 条记录已不在链中")
    if head_seq != expected_seq - 1 or head_hash != prev:
        return checked, Break(expected_seq, "head",
                              f"链尾记录缺失：链头记为第 {head_seq} 条，实存至第 {expected_seq - 1} 条")
    return checked, None


def writer_verdict(signature: str | None, keys: Mapping[str, bytes], signed_before: bool, at_iso: str, actor: str,
                   actor_role: str, token_id: int | None, action: str, subject_kind: str, subject_id: str,
                   detail: Any) -> str:
    """Who wrote an entry, by its writer signature (the one judgement verify, the row check and the sealer share):
    `legacy` (unsigned, before any signed entry: written before signatures existed), `signed` (valid under its
    key), `unsigned` (none, after signed entries), `unknown_key` (a key not in `keys`), `forged` (does not hold)."""
    if signature is None:
        return "unsigned" if signed_before else "legacy"
    if signature_key_id(signature) not in keys:
        return "unknown_key"
    held = signature_holds(signature, keys, at_iso, actor, actor_role, token_id, action, subject_kind, subject_id,
                           detail)
    return "signed" if held else "forged"


def signature_break(link: Link, keys: Mapping[str, bytes], signed_before: bool) -> Break | None:
    """What is wrong with a sealed entry's writer signature, if anything. An unsigned entry after signed ones was
    put in by someone else than the product (and sealed by the sealer, which seals whatever it finds)."""
    verdict = writer_verdict(link.signature, keys, signed_before, link.at_iso, link.actor, link.actor_role,
                             link.token_id, link.action, link.subject_kind, link.subject_id, link.detail)
    if verdict == "unsigned":
        return Break(link.seq, "unsigned",
                     f"第 {link.seq} 条记录没有写入时的签名：不是本系统写入的（在库中被插入后封链）")
    if verdict == "unknown_key":
        assert link.signature is not None
        return Break(link.seq, "key", f"第 {link.seq} 条记录以密钥 {signature_key_id(link.signature)} 签名，"
                                      "核验方没有该密钥")
    if verdict == "forged":
        return Break(link.seq, "forged", f"第 {link.seq} 条记录的写入签名不符：不是持有密钥的本系统写入的")
    return None


def sealer_doubts(signature: str | None, key: tuple[str, bytes], signed_before: bool, at_iso: str, actor: str,
                  actor_role: str, token_id: int | None, action: str, subject_kind: str, subject_id: str,
                  detail: Any, keyring: Mapping[str, bytes] | None = None) -> bool:
    """Whether the sealer can tell an entry was not written by the product: no signature after signed entries, a
    signature that does not hold, or (holding the whole `keyring`, the current `key` among it) one in the name of a
    key the center never had. Holding only the current key, one made with another key (an older one, before a
    rotation) is left to `verify_chain`, which has every key."""
    keys = {**(keyring or {}), key[0]: key[1]}
    doubted = ("unsigned", "forged", "unknown_key") if keyring is not None else ("unsigned", "forged")
    return writer_verdict(signature, keys, signed_before, at_iso, actor, actor_role, token_id, action,
                          subject_kind, subject_id, detail) in doubted


@dataclass(frozen=True)
class SignedSince:
    """Where signed entries begin: the first signed entry's seq in the chain, and (while none is sealed) the first
    pending signed entry's id, the order the sealer will take them in."""

    seq: int | None
    pending_id: int | None

    def legacy_place(self, seq: int | None, entry_id: int) -> bool:
        """Whether an entry sits where entries were written before signatures existed: sealed before the first
        signed entry, or pending while none is sealed and none pending comes before it (the sealer will chain it
        as written before signatures: a check that runs before that seal must judge it the same way)."""
        if self.seq is not None:
            return seq is not None and seq < self.seq
        return seq is not None or self.pending_id is None or entry_id < self.pending_id


def entry_trusted(signature: str | None, legacy_place: bool, keys: Mapping[str, bytes], at_iso: str, actor: str,
                  actor_role: str, token_id: int | None, action: str, subject_kind: str, subject_id: str,
                  detail: Any) -> bool:
    """Whether an entry, sealed or not, may be believed about the row it names: signed by a holder of the audit key,
    or unsigned in the `legacy_place` (`SignedSince.legacy_place`: written before signatures existed)."""
    return writer_verdict(signature, keys, not legacy_place, at_iso, actor, actor_role, token_id, action,
                          subject_kind, subject_id, detail) in ("legacy", "signed")
