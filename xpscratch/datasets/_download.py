"""Checksum-verified, atomic file downloads (stdlib only; urllib is imported lazily)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from .._atomic import atomic_open

__all__ = ["download_file", "DownloadFailed"]

# Seconds without an answer (to connect, or between two reads) before a mirror counts as
# failed: a network that drops packets fails in seconds, and the next mirror is tried.
TIMEOUT_S = 10.0
_CHUNK = 1 << 16
# An overall limit per file and mirror: a mirror dripping a byte every few seconds never
# trips TIMEOUT_S. The largest file (Fashion-MNIST's training images) is 26.4 MB.
DEADLINE_S = 600.0
# No dataset file is larger: an endless body stops here instead of filling the disk.
MAX_BYTES = 32 << 20


class DownloadFailed(Exception):
    """Every URL failed; ``reasons`` holds one ``"url: why"`` line per attempt."""

    def __init__(self, dest: Path, reasons: list[str]) -> None:
        self.dest = dest
        self.reasons = reasons
        super().__init__(f"could not download {dest.name}: " + "; ".join(reasons))


def _urlopen(url: str, timeout: float) -> BinaryIO:
    """Open ``url`` for reading. Tests replace this to avoid the network."""
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": "xpscratch"})
    return urllib.request.urlopen(req, timeout=timeout)


def _fetch_one(
    url: str, dest: Path, md5: str, timeout: float, deadline_s: float, max_bytes: int
) -> None:
    """Stream ``url`` into a temp file next to ``dest``; replace ``dest`` only if the MD5 matches.

    On any failure the temp file is removed and ``dest`` (if it exists) is left untouched.
    """
    digest = hashlib.md5(usedforsecurity=False)
    deadline = time.monotonic() + deadline_s
    size = 0
    with atomic_open(dest, suffix=".part") as out, _urlopen(url, timeout) as resp:
        while chunk := resp.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"more than {max_bytes} bytes, larger than the file can be")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not done within {deadline_s:g} s ({size} bytes so far)")
            digest.update(chunk)
            out.write(chunk)
        got = digest.hexdigest()
        if got != md5:  # raising inside the block discards the temporary file
            raise ValueError(f"MD5 mismatch: expected {md5}, got {got}")


def _why(e: Exception, timeout: float) -> str:
    reason = getattr(e, "reason", e)  # URLError wraps the socket error
    if isinstance(reason, TimeoutError) and str(reason).startswith("not done within"):
        return str(reason)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {timeout:g} s ({type(e).__name__}: {e})"
    return f"{type(e).__name__}: {e}"


def download_file(
    urls: Sequence[str],
    dest: Path,
    md5: str,
    *,
    timeout: float = TIMEOUT_S,
    deadline_s: float = DEADLINE_S,
    max_bytes: int = MAX_BYTES,
) -> None:
    """Download ``dest`` from the first of ``urls`` that serves bytes with the given MD5.

    Writes atomically (temp file in the same directory, fsync, ``os.replace``): a failed,
    partial or mismatching download never leaves a file behind nor replaces a good one.
    A mirror gets ``deadline_s`` seconds in all and at most ``max_bytes`` bytes.
    Raises :class:`DownloadFailed` listing why each URL failed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    for url in urls:
        try:
            _fetch_one(url, dest, md5, timeout, deadline_s, max_bytes)
            return
        except Exception as e:  # network errors, HTTP errors, timeouts, checksum mismatch
            reasons.append(f"{url}: {_why(e, timeout)}")
    raise DownloadFailed(dest, reasons)
