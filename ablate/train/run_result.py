"""What one run hands back: its final metrics, per-epoch history and how it ran.
Torch-free, so the coordinating process can receive it from a worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    epochs: int
    stop_reason: str
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # samples per split
    versions: dict[str, str] = field(default_factory=dict)  # ablate, torch and the components' plugins
    stack: int = 1  # runs trained together as one stacked model (1: trained alone)
    unstacked: str = ""  # why a run that was to train in a stack trained alone ("" where it did not)
    compile: str = ""  # [train] compile: "" (off), "compiled", or "eager: <why compile was refused>"
