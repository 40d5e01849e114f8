"""What the engine stores: the Optuna storage, trials and their bulk rows, run claims,
attribute names, the study record and the results table. Every touch of Optuna's private
internals is in optuna_private."""
