"""The content hash of file-based data, part of a run's identity: a changed
CSV or image folder makes new runs instead of reusing old results.

A data set parameter named in ablate.data.datafiles.FILE_PARAMS that names
an existing file or folder is hashed (every file under a folder, by relative
name and content); digests are cached per process by size and modification time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ablate.data.datafiles import FILE_PARAMS

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def data_hash(params: dict[str, Any]) -> str:
    """'' for data without files; else a short hash of the files the parameters
    name (paths as ``located`` makes them: relative ones start at the working directory)."""
    h = hashlib.sha256()
    found = False
    for name in FILE_PARAMS:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        for f in files:
            found = True
            h.update(f"{name}:{f.relative_to(path) if f != path else f.name}:{file_digest(f)}\n".encode())
    return h.hexdigest()[:16] if found else ""
