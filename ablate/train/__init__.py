"""One run: its spec built into data, model and optimizer, the epoch loop, and its result.
Never imports engine, study or optuna."""
