"""The engine: planned runs as Optuna trials, who trains which run in which process
(runner, coordinator, executors, pool), progress, and checks before training. The one
place that decides whether a run trains stacked or alone."""
