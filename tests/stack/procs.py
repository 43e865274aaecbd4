"""What a stack's processes are, read from /proc (Linux): children, loaded libraries."""

from __future__ import annotations

import contextlib
from pathlib import Path


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The parent pid is the 2nd field after the ")" that closes the command name.
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def maps_library(pid: int, name: str) -> bool:
    """Whether process ``pid`` has a shared library (or any file) named ``name`` mapped."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
