"""The audit chain's arithmetic (clause 十三: 全程留痕可追溯): each entry's hash covers its content and the hash
before it; verifying names the first entry that was changed, removed or put out of order; pure functions."""

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


def entry_hash(prev_hash: str, seq: int, at_iso: str, actor: str, actor_role: str, action: str, subject_kind: str,
               subject_id: str, detail: Any, token_id: int | None = None, key: bytes | None = None,
               key_id: str | None = None) -> str:
    """The entry's digest over the previous hash and its every field (the acting token's id when there is one, so
    entries written before tokens were recorded keep their digests): HMAC-SHA256 with the audit key `key` (named
    `key_id`, which is covered too) kept outside the database, so that someone who can write the database but
    does not hold the key cannot re-hash a rewritten chain; plain SHA-256 for entries sealed before keys."""
    fields = [prev_hash, seq, at_iso, actor, actor_role, action, subject_kind, subject_id, canonical(detail)]
    if token_id is not None:
        fields.append(token_id)
    if key_id is not None:
        fields.append(key_id)
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


@dataclass(frozen=True)
class Break:
    """Where the chain first fails: the entry (by sequence number), what is wrong, in zh-CN."""

    seq: int
    kind: str  # changed | missing | out_of_order | head | key | anchor
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
    with their key from `keys`; every anchor must name an entry that is there with exactly the anchored hash."""
    keys = keys or {}
    pinned: dict[int, Anchor] = {}
    for anchor in anchors:
        pinned.setdefault(anchor.seq, anchor)
    expected_seq, prev = 1, GENESIS
    checked = 0
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
                            link.subject_kind, link.subject_id, link.detail, link.token_id, key, link.key_id)
        if not hmac.compare_digest(digest, link.hash):
            return checked, Break(link.seq, "changed", f"第 {link.seq} 条记录的内容已被改动（哈希不符）")
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
