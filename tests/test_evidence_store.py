"""The evidence store's writes: the same bytes back whatever the size (O_DIRECT pads to a block and truncates),
the buffered write where a filesystem refuses direct I/O, a full disk raised, atomic names, and aligned buffers
reused within bounds."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.adapters.evidence import DIRECT_IO_ALIGN_BYTES, EvidenceStore, _AlignedBuffers, padded_size

SIZES = [0, 1, DIRECT_IO_ALIGN_BYTES - 1, DIRECT_IO_ALIGN_BYTES, DIRECT_IO_ALIGN_BYTES + 1, 2_400_017]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tmpfs_dir(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs (which refuses O_DIRECT with EINVAL); root can mount one, and CI runs as root."""
    target = tmp_path / "tmpfs"
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(target)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_padded_size_is_whole_blocks() -> None:
    assert [padded_size(n) for n in (0, 1, 4095, 4096, 4097)] == [4096, 4096, 4096, 4096, 8192]


@pytest.mark.parametrize("size", SIZES)
def test_a_direct_write_stores_exactly_the_bytes(tmp_path: Path, size: int) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    data = os.urandom(size)
    path = store.put(digest(data), data)
    assert path.read_bytes() == data and path.stat().st_size == size
    assert store.direct_io  # the test machine's disk (ext4) takes O_DIRECT: the direct path is what ran
    assert not list(path.parent.glob(".tmp-*"))


def test_a_shorter_photo_after_a_longer_one_carries_none_of_its_bytes(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    long, short = os.urandom(3 * DIRECT_IO_ALIGN_BYTES), os.urandom(DIRECT_IO_ALIGN_BYTES + 10)
    store.put(digest(long), long)
    assert store.put(digest(short), short).read_bytes() == short  # the reused buffer's tail is cut off


@pytest.mark.parametrize("size", SIZES)
def test_a_tmpfs_stores_exactly_the_bytes(tmpfs_dir: Path, size: int) -> None:
    """tmpfs takes O_DIRECT since Linux 6.6 and refuses it before: either way the bytes come back."""
    store = EvidenceStore(tmpfs_dir / "evidence")
    data = os.urandom(size)
    assert store.put(digest(data), data).read_bytes() == data


def test_a_filesystem_refusing_direct_io_gets_the_buffered_write(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback alone (no filesystem on the test machine refuses O_DIRECT): open(O_DIRECT) fails with EINVAL,
    as on a FUSE or older tmpfs mount; the photo is written through the page cache, and so are later ones."""
    real_open = os.open
    refused: list[str] = []

    def refusing_open(path: str, flags: int, *args: int) -> int:
        if flags & os.O_DIRECT:
            refused.append(path)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    store = EvidenceStore(tmp_path / "evidence")
    first, second = os.urandom(DIRECT_IO_ALIGN_BYTES + 3), os.urandom(17)
    assert store.put(digest(first), first).read_bytes() == first
    assert store.direct_io is False and len(refused) == 1
    assert store.put(digest(second), second).read_bytes() == second
    assert len(refused) == 1  # not tried again


def test_a_full_disk_under_direct_io_is_raised_and_leaves_no_temp_file(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from the direct write is the caller's to answer (507), not a reason to fall back."""
    real_write = os.write

    def full_write(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = EvidenceStore(tmp_path / "evidence")
    data = os.urandom(9000)
    monkeypatch.setattr(os, "write", full_write)
    with pytest.raises(OSError) as raised:
        store.put(digest(data), data)
    monkeypatch.setattr(os, "write", real_write)
    assert raised.value.errno == errno.ENOSPC and store.direct_io
    assert not list((tmp_path / "evidence").rglob(".tmp-*")) and not store.exists(digest(data))


def test_an_existing_file_is_kept(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    data = os.urandom(5000)
    path = store.put(digest(data), data)
    before = path.stat().st_mtime_ns
    assert store.put(digest(data), data) == path and path.stat().st_mtime_ns == before


def test_buffers_are_reused_and_at_most_the_kept_number_stay() -> None:
    pool = _AlignedBuffers(keep=2)
    a, b, c = pool.take(8192), pool.take(4096), pool.take(4096 * 3)
    for buf in (a, b, c):
        pool.give_back(buf)
    assert b.closed and not a.closed and not c.closed  # the smallest is dropped, the largest two kept
    assert pool.take(4096 * 3) is c and pool.take(100) is a
    fresh = pool.take(4096 * 4)  # none large enough idle: a new one
    assert fresh is not a and fresh is not c and len(fresh) == 4096 * 4
