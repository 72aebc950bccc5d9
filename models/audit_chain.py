"""The audit chain's arithmetic (clause 十三: 全程留痕可追溯): each entry's hash covers its content and the hash
before it; verifying names the first entry that was changed, removed or put out of order; pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> Any:
    """The JSON form an entry's detail is stored and hashed in (keys sorted, non-JSON values as text)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False, sort_keys=True))


def entry_hash(prev_hash: str, seq: int, at_iso: str, actor: str, actor_role: str, action: str, subject_kind: str,
               subject_id: str, detail: Any, token_id: int | None = None) -> str:
    """SHA-256 over the previous hash and this entry's every field (the acting token's id when there is one, so
    entries written before tokens were recorded keep their digests)."""
    fields = [prev_hash, seq, at_iso, actor, actor_role, action, subject_kind, subject_id, canonical(detail)]
    if token_id is not None:
        fields.append(token_id)
    body = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


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


@dataclass(frozen=True)
class Break:
    """Where the chain first fails: the entry (by sequence number), what is wrong, in zh-CN."""

    seq: int
    kind: str  # changed | missing | out_of_order | head
    message: str


def verify_chain(links: Iterable[Link], head_seq: int, head_hash: str) -> tuple[int, Break | None]:
    """Walk the entries in sequence order: (entries checked, the first break or None)."""
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
        digest = entry_hash(link.prev_hash, link.seq, link.at_iso, link.actor, link.actor_role, link.action,
                            link.subject_kind, link.subject_id, link.detail, link.token_id)
        if digest != link.hash:
            return checked, Break(link.seq, "changed", f"第 {link.seq} 条记录的内容已被改动（哈希不符）")
        checked += 1
        expected_seq, prev = link.seq + 1, link.hash
    if head_seq != expected_seq - 1 or head_hash != prev:
        return checked, Break(expected_seq, "head",
                              f"链尾记录缺失：链头记为第 {head_seq} 条，实存至第 {expected_seq - 1} 条")
    return checked, None
