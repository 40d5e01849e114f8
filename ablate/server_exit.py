"""Imported by the fork server of ablate.pool (its preload list) and nowhere
else: when the command that started it ends, the server ends at once instead of
tearing down torch (seconds, while it still holds the command's output pipes).
Workers forked from it end through ``os._exit`` and never run exit handlers."""

from ablate.quick_exit import install, set_status

install()
set_status(0)
