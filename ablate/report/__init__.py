"""Static HTML reports for ablation studies: leaderboard, failures and figures."""

from ablate.report.page import write_report

__all__ = ["write_report"]
