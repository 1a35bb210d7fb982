"""A stored checkpoint as a tar archive that is the same bytes every time it is built.

The members are the manifest's files in sorted order, then the manifest, with fixed owners, modes
and the version's creation time, so the archive's length is known before it is sent and a range
requested after a broken download continues exactly the bytes the first request began.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from app.core.ids import ascii_number
from app.core.storage import Storage

BLOCK = 512
CHUNK = 1 << 20
TRAILER = b"\0" * (2 * BLOCK)


class ArchiveTruncated(OSError):
    """A member's stored file was shorter than its manifest says (removed or corrupted meanwhile)."""


@dataclass(frozen=True)
class _Segment:
    offset: int
    length: int
    data: bytes | None = None  # inline bytes (headers, padding, the manifest) ...
    key: str | None = None  # ... or a stored file's key


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class CheckpointArchive:
    """``files``: name -> size of each stored file under ``key`` (the manifest's record), ``manifest``:
    the manifest's own bytes, added last."""

    def __init__(self, storage: Storage, key: str, files: dict[str, int], manifest_name: str,
                 manifest: bytes, mtime: int) -> None:
        self.storage = storage
        self.segments: list[_Segment] = []
        offset = 0

        def add(length: int, data: bytes | None = None, key: str | None = None) -> None:
            nonlocal offset
            if length:
                self.segments.append(_Segment(offset, length, data, key))
                offset += length

        for name in sorted(files):
            add(len(header := _header(name, files[name], mtime)), header)
            add(files[name], key=f"{key}/{name}")
            add(-files[name] % BLOCK, b"\0" * (-files[name] % BLOCK))
        add(len(header := _header(manifest_name, len(manifest), mtime)), header)
        add(len(manifest), manifest)
        add(-len(manifest) % BLOCK, b"\0" * (-len(manifest) % BLOCK))
        add(len(TRAILER), TRAILER)
        self.size = offset

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The archive's bytes [start, stop)."""
        stop = self.size if stop is None else stop
        for segment in self.segments:
            begin, end = max(start, segment.offset), min(stop, segment.offset + segment.length)
            if begin >= end:
                continue
            if segment.data is not None:
                yield segment.data[begin - segment.offset:end - segment.offset]
            else:
                assert segment.key is not None  # a segment holds inline bytes or a stored file's key
                yield from self._file_chunks(segment.key, begin - segment.offset, end - begin)

    def _file_chunks(self, key: str, skip: int, length: int) -> Iterator[bytes]:
        with self.storage.open(key) as handle:
            handle.seek(skip)
            while length > 0:
                block = handle.read(min(CHUNK, length))
                if not block:
                    raise ArchiveTruncated(f"{self.storage.uri(key)} ended {length} bytes early")
                length -= len(block)
                yield block


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, stop) of a single ``bytes=`` range; None to send the whole archive (no header, or one
    this server does not honour: several ranges, another unit, a malformed one). ValueError when the
    range lies wholly past the end (416)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first, last = ascii_number(first_text), ascii_number(last_text)
    if not dash or (first is None and last is None) or (first_text and first is None) \
            or (last_text and last is None):
        return None
    if first is None:  # "-N": the last N bytes
        assert last is not None
        return (max(size - last, 0), size) if last > 0 else _unsatisfiable(size)
    start = first
    stop = min(last + 1, size) if last is not None else size
    if last is not None and last < start:
        return None
    if start >= size:
        _unsatisfiable(size)
    return start, stop


def _unsatisfiable(size: int):
    raise ValueError(f"the range starts past the end of the {size}-byte archive")

