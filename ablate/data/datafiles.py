"""Where a data set's files are: a data set parameter named ``path``, ``root``
or ``test_root`` names a file or folder relative to the study file, as plugin
files are, so a study runs from any working directory.

The value as written is part of a run's identity; the folder it is relative to
is not (``RunSpec.data_dir``): a study folder moved or checked out elsewhere
(another worker's machine) keeps its runs, and the files' contents are hashed
into the identity (ablate.data.datahash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FILE_PARAMS = ("path", "root", "test_root")


def located(params: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """The parameters with every relative file path joined to ``base`` ('~' expanded)."""
    out = dict(params)
    for name in FILE_PARAMS:
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = str(Path(base) / Path(value).expanduser()) if base else str(Path(value).expanduser())
    return out
