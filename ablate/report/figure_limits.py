"""Limits shared by the figure files' planning (matplotlib-free) and their drawing."""

DPI = 110
# Small multiples beyond a dozen panels are unreadable and slow; the page says which are shown.
MAX_CURVE_ARMS = 12
MAX_PANELS = 6
