"""The content-addressed evidence store: photo files named by the SHA-256 of their bytes."""

from __future__ import annotations

import calendar
import errno
import hashlib
import logging
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

DIRECT_IO_ALIGN_BYTES = 4096
"""Buffer address and write length for O_DIRECT: a page, a multiple of every block size Linux disks use."""

JOURNAL_DIR = ".written"
"""Under the store's root: one journal per hour and process naming every file written (`EvidenceStore.put`), so
that the janitor checks only what was written, never walks millions of files."""
JOURNAL_HOUR = "%Y%m%d%H"  # a journal's name: its UTC hour, then the writer's pid

KEPT_BUFFERS = 4
"""Aligned buffers kept between writes (each as large as the largest photo written since): more are made while
more writes run at once, and dropped after."""


def padded_size(n_bytes: int) -> int:
    """`n_bytes` rounded up to a whole number of direct-I/O blocks (at least one)."""
    return max(1, -(-n_bytes // DIRECT_IO_ALIGN_BYTES)) * DIRECT_IO_ALIGN_BYTES


class _AlignedBuffers:
    """Page-aligned anonymous memory for direct writes, reused: a fresh mapping costs its page faults (about
    2 ms of kernel time for 2.4 MB), a reused one nothing."""

    def __init__(self, keep: int) -> None:
        self._idle: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self._keep = keep

    def take(self, size: int) -> mmap.mmap:
        with self._lock:
            for i, buf in enumerate(self._idle):
                if len(buf) >= size:
                    return self._idle.pop(i)
        return mmap.mmap(-1, size)

    def give_back(self, buf: mmap.mmap) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(buf)
                return
            smallest = min(range(len(self._idle)), key=lambda i: len(self._idle[i]))
            if len(self._idle[smallest]) < len(buf):
                buf, self._idle[smallest] = self._idle[smallest], buf
        buf.close()


class EvidenceFault(Exception):
    """A stored evidence file that is not what its name says: `altered` (its bytes hash to `found_sha256`, not to
    the digest it is filed under) or `missing` (no file). Nothing built on it may be shown or judged as evidence."""

    def __init__(self, sha256: str, kind: str, found_sha256: str | None = None) -> None:
        super().__init__(f"evidence {sha256[:12]}… {kind}" + (f" (hashes to {found_sha256[:12]}…)" if found_sha256
                                                              else ""))
        self.sha256, self.kind, self.found_sha256 = sha256, kind, found_sha256


class EvidenceStore:
    """Files under `root/ab/cd/<sha256>`; writes are atomic (temp file, fsync, rename, directory fsync).

    Where the filesystem allows it (ext4, xfs), a file is written with O_DIRECT: straight from an aligned buffer to
    the disk, not through the page cache. On this project's 2-core VM that costs 0.3-0.6 ms of kernel time for a
    2.4 MB photo instead of 5.5 ms (`scripts/bench_ingest.py`, README "Load"); the worker reads the photo once,
    so the cache saved nothing. Filesystems that refuse O_DIRECT (tmpfs) get the buffered write."""

    def __init__(self, root: Path, direct_io: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.direct_io = direct_io and hasattr(os, "O_DIRECT")
        self._buffers = _AlignedBuffers(KEPT_BUFFERS)
        self.clock = clock  # (seconds since the epoch) names the journal a write is noted in
        self.journal_dir = self.root / JOURNAL_DIR
        self.journal_dir.mkdir(exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        """Store `data` under its digest (idempotent: an existing file is kept); durable when this returns."""
        path = self.path_for(sha256)
        if path.exists():
            try:
                self.get(sha256)
                return path
            except EvidenceFault as fault:  # the genuine bytes are here again: the file is written anew below
                log.error("evidence file %s was %s; restored from a new upload of the same content", path.name,
                          fault.kind)
        self._note_written(sha256)  # before any byte: a write cut short anywhere after is found by the janitor
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            os.close(fd)
            if not (self.direct_io and self._write_direct(tmp, data)):
                self._write_buffered(tmp, data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        sync_directory(path.parent)
        return path

    def _note_written(self, sha256: str) -> None:
        """Append the digest to this hour's journal of this process (one small O_APPEND write, no fsync: a file
        written before a crash of the machine is found by `monitor evidence sweep --all`)."""
        name = f"{time.strftime(JOURNAL_HOUR, time.gmtime(self.clock()))}-{os.getpid()}"
        fd = os.open(self.journal_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{sha256}\n".encode())
        finally:
            os.close(fd)

    def journals(self) -> Iterator[tuple[Path, float]]:
        """Each journal with the end of its hour (seconds since the epoch), oldest first."""
        for path in sorted(self.journal_dir.glob("*-*")):
            try:
                start = calendar.timegm(time.strptime(path.name.split("-", 1)[0], JOURNAL_HOUR))
            except ValueError:
                continue
            yield path, start + 3600

    def _write_direct(self, tmp: str, data: bytes) -> bool:
        """Write `data` to the file `tmp` with O_DIRECT and fsync it; False if this filesystem refuses direct I/O
        (then nothing is promised about `tmp`'s content, and later writes go buffered)."""
        size = padded_size(len(data))
        buf = self._buffers.take(size)
        try:
            buf[:len(data)] = data
            buf[len(data):size] = bytes(size - len(data))  # no earlier photo's tail, even before the truncate
            fd = os.open(tmp, os.O_WRONLY | os.O_DIRECT)
            try:
                view = memoryview(buf)[:size]
                try:
                    written = 0
                    while written < size:
                        written += os.write(fd, view[written:])
                finally:
                    view.release()
                os.ftruncate(fd, len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise  # a full disk (ENOSPC) or an I/O error is the caller's to answer
            log.info("evidence directory %s refuses O_DIRECT; writing through the page cache", self.root)
            self.direct_io = False
            return False
        finally:
            self._buffers.give_back(buf)

    @staticmethod
    def _write_buffered(tmp: str, data: bytes) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def get(self, sha256: str) -> bytes:
        """The file's bytes, checked against its name (1.3 ms per 2.4 MB on this project's VM): a file that was
        replaced or edited on disk, or is gone, raises EvidenceFault instead of being shown or judged."""
        try:
            data = self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            raise EvidenceFault(sha256, "missing") from None
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise EvidenceFault(sha256, "altered", found)
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def count_files(self) -> int:
        return sum(1 for p in self.files() if not p.name.startswith(".tmp-"))

    def files(self) -> Iterator[Path]:
        """Every stored file and leftover temporary file (a walk of the whole tree: for tools, not hot paths)."""
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            if path.is_file():
                yield path


def sync_directory(directory: Path) -> None:
    """fsync a directory, so that a file just renamed into it survives a power cut (where the platform allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory: the rename is as durable as they make it
        pass
    finally:
        os.close(fd)
