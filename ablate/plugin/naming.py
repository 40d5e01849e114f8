"""Qualified component names, ``DIST:NAME``: the distribution that provides a
component before its short name, so two plugins may register one short name and a
study says which it means. Plain string functions, no imports beyond ``re``."""

from __future__ import annotations

import re

BUILTIN = "ablate"  # the distribution whose components keep their bare names in run identities
FILE = "file"  # the prefix of a plugin file's plugin name: "file:mine.py"


def normalise(name: str) -> str:
    """Names are short, lower case, with underscores: 'Batch-Norm' -> 'batch_norm'."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def dist_key(dist: str) -> str:
    """Distribution names compare as pip compares them: case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", str(dist).strip()).lower()


def dist_of(plugin: str) -> str:
    """The DIST of a plugin's components: an installed plugin 'Ablate_Extras:norms'
    -> 'ablate-extras' (pip's spelling); a plugin file 'file:mine.py' -> 'mine.py'
    (its file name: distinct among a study's files, and never the name of an
    installed distribution, so never taken for ablate's own)."""
    prefix, _, rest = plugin.partition(":")
    return rest if prefix == FILE and rest else dist_key(prefix)


def split(text: str) -> tuple[str, str]:
    """'DIST:NAME' -> (DIST, normalised NAME); a bare 'NAME' -> ('', normalised NAME)."""
    dist, _, name = str(text).strip().rpartition(":")
    return dist.strip(), normalise(name)


def tidy(text: str) -> str:
    """A level as a study wrote it, tidied for labels: 'Ablate-Extras:Spectral-Norm' ->
    'ablate-extras:spectral_norm' (the DIST keeps its '-', '_' and '.')."""
    dist, name = split(text)
    return f"{dist.lower()}:{name}" if dist else name
