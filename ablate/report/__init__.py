"""Static reports for ablation studies.

analysis (every number, once) -> figures (PNG), exports (leaderboard.md/.tex,
summary.md) and page (index.html); compare puts several studies side by side.

``write_report`` is loaded when first asked for, so the figure workers' modules
(``figure_workers``, ``figure_pool``) import without pandas, scipy or jinja2: `ablate
report` starts its workers before it loads those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ablate.report.page import write_report

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from ablate.report.page import write_report  # pandas, scipy, jinja2: only when asked for

        return write_report
    raise AttributeError(f"module 'ablate.report' has no attribute {name!r}")
