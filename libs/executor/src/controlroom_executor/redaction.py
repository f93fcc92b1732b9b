"""A job's secrets never reach anything stored: redacted by value from logs, events and files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

MASK = "[redacted]"
_MIN_SECRET = 4
"""Shorter values would mask common text (a secret of "1" would hide every digit)."""


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._text = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        self._bytes = [s.encode() for s in self._text]

    def __bool__(self) -> bool:
        return bool(self._text)

    def text(self, value: str) -> str:
        for secret in self._text:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self._bytes:
            if secret in value:
                value = value.replace(secret, MASK.encode())
        return value

    def file(self, path: Path, chunk: int = 1 << 20) -> None:
        """Rewrite ``path`` with every secret masked, streaming (a secret may span chunks)."""
        if not self._bytes:
            return
        overlap = max(len(s) for s in self._bytes) - 1
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".redact-")
        try:
            with path.open("rb") as src, os.fdopen(fd, "wb") as out:
                carry = b""
                while block := src.read(chunk):
                    data = self.data(carry + block)
                    # Hold back a tail that could be the start of a secret split by the chunk.
                    cut = max(len(data) - overlap, 0)
                    out.write(data[:cut])
                    carry = data[cut:]
                out.write(self.data(carry))
            shutil.move(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
