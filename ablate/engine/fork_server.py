"""Imported by the fork server of ablate.engine.pool (its preload list) and nowhere
else: it sets up the process every worker is forked from. Its malloc keeps
freed memory (ablate.train.allocator: no page faults for each step's tensors, in
every worker), and when the command that started it ends, the server ends at
once instead of tearing torch down (seconds, while it still holds the command's
output pipes). Workers end through ``os._exit`` and never run exit handlers."""

from ablate.engine.quick_exit import install, set_status
from ablate.train.allocator import keep_freed_memory

keep_freed_memory()
install()
set_status(0)
