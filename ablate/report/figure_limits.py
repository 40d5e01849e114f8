"""Limits shared by the figure files' planning (matplotlib-free) and their drawing."""

DPI = 110
# Small multiples beyond a dozen panels are unreadable and slow; the page says which are shown.
MAX_CURVE_ARMS = 12
MANY_CURVE_ARMS = 8  # past MANY_ARMS: the best arms are near-alike there, and each panel costs a worker time
MAX_PANELS = 6
# Past this many arms, a chart with one labelled row per arm is taller than a screen can show:
# the arms figure and the page's leaderboard name the TOP_ARMS best (and the baseline), and a
# rank plot shows every arm.
MANY_ARMS = 30
TOP_ARMS = 20
MAX_HEIGHT_PX = 2000  # no figure is taller, whatever the study
MAX_LEVELS = 12  # levels drawn on an effects or interaction axis
MAX_LINES = 8  # lines (levels of the second factor) in one interaction plot
MAX_CURVE_SEEDS = 10  # seeds drawn per learning-curve panel
MAX_BARS = 30  # factors in the importance chart
