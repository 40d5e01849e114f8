"""Names of the attributes ablate stores on Optuna trials and studies, in one
place: the engine writes them, results and reports read them."""

from __future__ import annotations

# --- on each trial -----------------------------------------------------------
RUN_KEY = "run_key"  # the RunSpec hash: the run's identity
ARM = "arm"  # the arm's display name
ARM_KEY = "arm_key"  # the arm's identity (hash of its components and settings)
SEED = "seed"
STAGE = "stage"  # "main", or "search" / "confirm" in a search design
VALUES = "values"  # the arm's factor values (search trials: to rebuild the arm)
FINGERPRINT = "fingerprint"  # the study file's fixed settings (search trials of this file)
SPEC = "spec"  # the RunSpec as JSON
RESULT = "result"  # metrics, history, epochs, stop reason, seconds, config, device, threads
FAILURE = "failure"  # one line: why the run failed
FAILURE_DETAIL = "failure_detail"  # component, exception type, message, traceback
PRUNED = "pruned"  # history and epochs of a pruned search run
INTERRUPTED = "interrupted"  # a training that did not finish: why (its run is trained again)
REPEAT_OF = "repeat_of"  # a search proposal of an arm already run: the trial it reuses
METRIC_PREFIX = "metric:"  # each final metric also stored on its own, for optuna-dashboard

# --- on the study --------------------------------------------------------------
RECORD = "record"  # the StudyRecord as JSON
PLAN = "plan"  # the planned runs (RunEntry as JSON)
STUDY_FINGERPRINT = "fingerprint"

# --- stages ----------------------------------------------------------------------
MAIN, SEARCH, CONFIRM = "main", "search", "confirm"
