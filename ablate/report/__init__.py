"""Static reports for ablation studies.

analysis (every number, once) -> figures (PNG), exports (leaderboard.md/.tex,
summary.md) and page (index.html); compare puts several studies side by side.
"""

from ablate.report.page import write_report

__all__ = ["write_report"]
