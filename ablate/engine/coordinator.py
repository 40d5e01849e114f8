"""The coordinating process: claims runs, starts their trials, hands their
specs to an executor and stores what comes back. Any number of coordinators
(``ablate run`` or ``ablate worker`` on any machine) share one storage: the
claims table decides who trains what, so every run trains once; a run whose
worker stops sending heartbeats is taken over, and an interrupted coordinator
gives its runs back at once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import optuna

from ablate.engine.events import Event, OnRunEpoch
from ablate.engine.heartbeat import Heartbeat
from ablate.engine.planned import PlannedRun, run_attrs, suggest_values
from ablate.engine.progress import Progress
from ablate.engine.store import attrs
from ablate.engine.store.optuna_internals import trial_id_of
from ablate.engine.store.run_claims import DONE, RUNNING, ClaimStore
from ablate.engine.store.storage import OBJECTIVE
from ablate.engine.store.trials import (
    AnyTrial,
    Outcome,
    abandon,
    failure_outcome,
    pruned_outcome,
    result_outcome,
    run_outcome,
    run_states,
    start_trials,
    store_outcomes,
    write_values,
)
from ablate.spec import RunSpec
from ablate.study.config import StudyConfig
from ablate.study.design import run_spec, sampled_arm

if TYPE_CHECKING:  # the coordinator never imports torch: workers train
    from ablate.engine.environment import Environment
    from ablate.train.run_result import RunResult

Log = Callable[[str], None]
Grouper = Callable[[list["PlannedRun"]], list[list["PlannedRun"]]]


def one_by_one(runs: list[PlannedRun]) -> list[list[PlannedRun]]:
    return [[r] for r in runs]


MAX_PROPOSALS = 10  # per budgeted search arm: a space smaller than its budget ends, not loops
FLUSH_SECONDS = 5.0  # epoch values of runs that cannot be pruned are written this often, batched
MAX_DEATHS = 3  # a run whose worker process dies this often fails (killed for memory each time, say)


class Executor(Protocol):
    on_epoch: OnRunEpoch
    background: bool  # trains in other processes, while the coordinator stores outcomes

    @property
    def capacity(self) -> int: ...

    def submit(self, keys: list[str], specs: list[RunSpec]) -> None: ...
    def poll(self, timeout: float) -> list[Event]: ...
    def busy(self) -> int: ...
    def environment(self, specs: list[RunSpec], wanted_device: str) -> Environment: ...
    def close(self) -> None: ...


@dataclass
class Task:
    """A claimed run in training: ``key`` is its claim (a run key, or a search slot)."""

    key: str
    run: PlannedRun
    trial: AnyTrial  # an optuna.Trial where it may be pruned (a search's), else a TrialRef
    prune: bool = False
    epochs: dict[int, float] = field(default_factory=dict)  # epoch values not yet written


@dataclass
class Coordinator:
    study: optuna.Study
    config: StudyConfig
    claims: ClaimStore
    executor: Executor
    progress: Progress
    log: Log
    heartbeat: float = 2.0
    grouper: Grouper = one_by_one  # which runs train together (the seeds of an arm, stacked)
    tasks: dict[str, Task] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)  # claims taken and not yet settled
    taken_over: set[str] = field(default_factory=set)  # claims of dead workers' runs, their trials not yet closed
    deaths: dict[str, int] = field(default_factory=dict)  # run key -> how often its worker process died
    lost: set[str] = field(default_factory=set)  # claims taken over while this worker was stopped or cut off

    def __post_init__(self) -> None:
        self.executor.on_epoch = self.on_epoch
        self.pareto = self.config.design.kind == "pareto"
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        self.beats = Heartbeat(self.claims, self.heartbeat, self._running, self._taken_over)

    def start(self) -> None:
        """Start beating for the runs in training (before the first claim)."""
        self.beats.start()

    # --- the loop -------------------------------------------------------------
    def run_planned(
        self, planned: list[PlannedRun], retry_failed: bool = False, retrain: set[str] | None = None
    ) -> None:
        """Train every planned run that has no stored outcome (or is to be trained
        again: ``retrain`` keys, failed runs with ``retry_failed``); return when all have one."""
        pending = self._settle_stored(planned, retry_failed, retrain or set())
        groups = self.grouper(pending)
        waited = False

        def refill() -> dict[str, tuple[str, float, str]]:
            nonlocal pending
            states = self.claims.states()
            pending = [r for r in pending if states.get(r.key, ("",))[0] != DONE or r.key in self.tasks]
            keys = {r.key for r in pending if r.key not in self.tasks}
            self._fill([[r for r in g if r.key in keys] for g in groups])
            return states

        while True:
            states = refill()
            if self.tasks:
                self._drain(1.0, refill)
            elif not pending:
                return
            elif not self._claimable(pending, states):
                if not waited:
                    self.log(
                        f"waiting for {len(pending)} run(s) in progress elsewhere (taken over if their worker stops)"
                    )
                    waited = True
                time.sleep(1.0)

    def _claimable(self, pending: list[PlannedRun], states: dict[str, tuple[str, float, str]]) -> bool:
        now = time.time()
        return any(
            r.key not in states or (states[r.key][0] == RUNNING and now - states[r.key][1] >= self.claims.grace)
            for r in pending
        )

    def _settle_stored(self, planned: list[PlannedRun], retry_failed: bool, retrain: set[str]) -> list[PlannedRun]:
        """Runs already stored need no training: mark their claims done (failed ones
        are given back with ``retry_failed``)."""
        stored = run_states(self.study)
        states = self.claims.states()
        pending = []
        retry = []
        for run in planned:
            result = run_outcome(stored.get(run.key, []))
            if result is None or (result == "failed" and retry_failed) or run.key in retrain:
                pending.append(run)
                if result is not None:
                    retry.append(run.key)
            elif states.get(run.key, ("",))[0] != DONE and self.claims.claim(run.key):
                self.claims.finish(run.key)
        self.claims.release(retry, anyone=True)
        return pending

    def _fill(self, groups: list[list[PlannedRun]]) -> None:
        """Claim and start units of work (a run, or an arm's seeds stacked) while the executor has room.
        A background executor gets every unit that fits before any trial is created."""
        units: list[list[tuple[str, PlannedRun]]] = []
        for group in groups:
            if self.executor.busy() >= self.executor.capacity:
                break
            runs = self._claim_runs(group)
            if not runs:
                continue
            unit = [(r.key, r) for r in runs]
            if self.executor.background:
                self.executor.submit([k for k, _ in unit], [r.spec for _, r in unit])
                units.append(unit)
            else:
                self._launch(unit)
        for unit in units:
            self._begin_all(unit)

    def _claim_runs(self, runs: list[PlannedRun]) -> list[PlannedRun]:
        """The runs of a unit this coordinator could claim (one transaction for all)."""
        if not runs:
            return []
        hows = self.claims.claim_many([r.key for r in runs])
        taken = []
        for run in runs:
            how = hows[run.key]
            if how is None:
                continue
            self.claimed.add(run.key)
            if how == "takeover":
                if run_outcome(run_states(self.study).get(run.key, [])) is not None:
                    self._finish(run.key)  # stored by a worker that died before saying so
                    continue
                self.taken_over.add(run.key)
            taken.append(run)
        return taken

    def _claim(self, key: str) -> str | None:
        how = self.claims.claim(key)
        if how is not None:
            self.claimed.add(key)
        return how

    def _finish(self, *keys: str) -> None:
        self.claims.finish(*keys)
        self.claimed.difference_update(keys)

    def _launch(self, items: list[tuple[str, PlannedRun]], trial: optuna.Trial | None = None) -> None:
        """Start a trial for each claimed run (``trial``: one a search already asked
        for) and hand the unit to the executor (the trials first: an inline executor
        trains it at once)."""
        if trial is None:
            self._begin_all(items)
        else:
            self._begin(items, [trial])
        self.executor.submit([k for k, _ in items], [r.spec for _, r in items])
        if self.executor.busy() == 0:  # an inline executor has already trained it
            self._drain(0.0)

    def _begin_all(self, items: list[tuple[str, PlannedRun]]) -> None:
        """Trials for a unit's runs, made in one transaction, their arms as fixed parameters."""
        fingerprint = self.config.fingerprint()
        made = start_trials(
            self.study,
            [(dict(run.arm.values), run_attrs(run, fingerprint)) for _, run in items],
            lambda trial: suggest_values(trial, self.config),
        )
        self._begin(items, made)

    def _begin(self, items: list[tuple[str, PlannedRun]], made: list[AnyTrial]) -> None:
        """Register the trainings with their trials (an interrupt then closes them)."""
        for key, _ in items:
            if key in self.taken_over:  # the dead worker's trial is closed, its run trained here
                self.taken_over.discard(key)
                abandon(self.study, self.claims.stale_trial(key), "its worker stopped; trained again")
        with self._lock:
            for (key, run), trial in zip(items, made, strict=True):
                prune = self.config.design.pruner != "none" and run.stage == attrs.SEARCH
                self.tasks[key] = Task(key, run, trial, prune)
        self.claims.set_trials({key: trial_id_of(trial) for (key, _), trial in zip(items, made, strict=True)})
        for _, run in items:
            self.progress.started(run)

    def _drain(self, timeout: float, refill: Callable[[], object] | None = None) -> None:
        """Store what the executor hands back; ``refill`` first gives freed
        workers new units, so they train while the outcomes are written."""
        events = self.executor.poll(timeout)
        if events and refill is not None and self.executor.background:
            refill()
        self._handle(events)

    # --- outcomes -------------------------------------------------------------
    def _handle(self, events: list[Event]) -> None:
        """Store the outcomes that arrived together in one transaction; a worker
        that died gives its runs back at once."""
        stored: list[tuple[Task, Outcome, str]] = []
        for kind, key, payload in events:
            with self._lock:
                task = self.tasks.pop(key, None)
            if task is None:
                continue
            if kind == "died":
                self.deaths[key] = self.deaths.get(key, 0) + 1
                if self.deaths[key] < MAX_DEATHS:
                    self._give_back(task, payload)
                    continue
                kind, payload = "failed", died(payload, self.deaths[key])
            stored.append((task, *self._outcome(task, kind, payload)))
        if not stored:
            return
        with self._lock:
            gone = set(self.lost)  # taken over, as the heartbeat found: not even tried
        lost = [item for item in stored if item[0].key in gone]
        owners = {trial_id_of(task.trial): task.key for task, _, _ in stored if task.key not in gone}
        late = store_outcomes(self.study, [o for t, o, _ in stored if t.key not in gone], self._not_mine(owners))
        late_ids = {id(o) for o in late}
        dropped = lost + [item for item in stored if id(item[1]) in late_ids]
        for task, _, _ in dropped:
            self._drop_late(task)
        kept = [item for item in stored if all(item is not d for d in dropped)]
        self._finish(*(task.key for task, _, _ in kept))
        for task, _, text in kept:
            self.progress.finished(task.run, text)

    def _not_mine(self, owners: dict[int, str]) -> Callable[[Any, list[int]], set[int]]:
        """The check made in the transaction that stores outcomes: trials whose runs
        this worker no longer holds (their rows locked until it commits)."""

        def check(conn: Any, trial_ids: list[int]) -> set[int]:
            keys = [owners[t] for t in trial_ids if t in owners]
            mine = self.claims.mine(conn, keys, lock=True) if keys else set()
            return {t for t in trial_ids if owners.get(t) not in mine}

        return check

    def _drop_late(self, task: Task) -> None:
        """An outcome that came too late: another worker took the run over while this
        one was stopped (suspended) or cut off past its heartbeat. Not stored."""
        self.claimed.discard(task.key)
        with self._lock:
            self.lost.discard(task.key)
        self.progress.note(
            f"{task.run.arm.name} seed={task.run.seed}: dropped this worker's late outcome: another worker took "
            "the run over while this one was stopped or cut off past its heartbeat"
        )

    def _give_back(self, task: Task, why: str) -> None:
        """A run whose worker died: its trial closed, its claim released, so it trains again."""
        abandon(self.study, trial_id_of(task.trial), why)
        self.claims.release([task.key])
        self.claimed.discard(task.key)
        self.progress.note(f"{task.run.arm.name} seed={task.run.seed}: {why}; trained again")

    def _outcome(self, task: Task, kind: str, payload: Any) -> tuple[Outcome, str]:
        """What to store for a finished training, and its progress line."""
        if kind == "done":
            m = payload.metrics
            text = (
                f"test {m['test_accuracy']:.3f} gap {m['gap']:+.3f} ({payload.epochs} ep, "
                f"{payload.stop_reason}, {payload.seconds:.1f}s)"
            )
            if payload.unstacked:
                text += f"; trained alone: {payload.unstacked}"
            return result_outcome(task.trial, payload, self._objective(payload), task.epochs), text
        if kind == "failed":
            return failure_outcome(task.trial, payload, task.epochs), f"FAILED: {payload['reason']}"
        return pruned_outcome(task.trial, payload, task.epochs), f"pruned at epoch {len(payload)}"

    def _objective(self, result: RunResult) -> float | list[float]:
        m = result.metrics
        if self.pareto:  # choose on validation only: the test split is never used to choose
            return [m["val_accuracy"], m["train_accuracy"] - m["val_accuracy"]]
        return m[OBJECTIVE]

    def on_epoch(self, key: str, metrics: dict[str, float]) -> bool:
        """Report the epoch to Optuna (dashboard curves, pruning); True: prune this run.
        A run that can be pruned reports each epoch at once; the others are
        written in batches every few seconds and with their outcome."""
        task = self.tasks.get(key)
        if task is None:
            return False
        self.progress.epoch(task.run, metrics)
        if self.pareto:  # Optuna keeps intermediate values for single-objective studies only
            return False
        if task.prune and isinstance(task.trial, optuna.Trial):
            try:
                task.trial.report(metrics[OBJECTIVE], int(metrics["epoch"]))
                return task.trial.should_prune()
            except RuntimeError:  # its trial closed by a worker that took the run over: stop, drop it
                self._taken_over({key})
                return True
        task.epochs[int(metrics["epoch"])] = metrics[OBJECTIVE]
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush_epochs()
        return False

    def _flush_epochs(self) -> None:
        """Write the buffered epoch values (optuna-dashboard's live curves)."""
        self._flushed = time.monotonic()
        for task in list(self.tasks.values()):
            if task.epochs and task.key not in self.lost:
                epochs, task.epochs = task.epochs, {}
                try:
                    write_values(self.study, trial_id_of(task.trial), epochs)
                except RuntimeError:  # its trial closed by a worker that took the run over
                    self._taken_over({task.key})

    # --- heartbeats and shutdown -------------------------------------------------
    def _running(self) -> list[str]:
        with self._lock:
            return list(self.tasks)

    def _taken_over(self, keys: set[str]) -> None:
        """Runs in training that another worker holds now: their outcomes will be dropped."""
        with self._lock:
            self.lost |= keys & set(self.tasks)

    def close(self, interrupted: bool) -> None:
        """Stop; runs still in training are given back at once (and their trials closed)."""
        self.beats.stop()
        self.executor.close()
        with self._lock:
            tasks, self.tasks = list(self.tasks.values()), {}
        closed = set()
        for task in tasks:
            try:
                abandon(self.study, trial_id_of(task.trial), "interrupted" if interrupted else "stopped")
                closed.add(task.key)
            except Exception:  # the storage is away or full: the claim stays, so a takeover closes the trial
                continue
        with contextlib.suppress(Exception):  # the same: others take these runs over after the grace
            self.claims.release((self.claimed - {t.key for t in tasks}) | closed)
        self.claimed.clear()

    # --- a search ------------------------------------------------------------
    def run_search(self, slots: list[str]) -> None:
        """Spend the search budget: each slot is claimed once and trains one new arm."""
        while True:
            states = self.claims.states()
            open_slots = [s for s in slots if states.get(s, ("",))[0] != DONE and s not in self.tasks]
            for slot in open_slots:
                if self.executor.busy() >= self.executor.capacity or not self._claim(slot):
                    continue
                self._start_search(slot)
            if self.tasks:
                self._drain(1.0)
            elif not [s for s in slots if states.get(s, ("",))[0] != DONE]:
                return
            else:
                time.sleep(1.0)

    def _start_search(self, slot: str) -> None:
        """Ask the sampler for an arm not run yet (repeats reuse the earlier value)."""
        seed = self.config.design.search_seed
        for _ in range(MAX_PROPOSALS):
            trial = self.study.ask()
            values = suggest_values(trial, self.config)
            arm = sampled_arm(self.config, values)
            run = PlannedRun(arm, seed, _spec(self.config, arm, seed), attrs.SEARCH)
            for name, value in run_attrs(run, self.config.fingerprint()).items():
                trial.set_user_attr(name, value)
            earlier = [
                t
                for t in run_states(self.study).get(run.key, [])
                if t.number != trial.number and t.state == optuna.trial.TrialState.COMPLETE
            ]
            if not earlier:
                self._launch([(slot, run)], trial)
                return
            trial.set_user_attr(attrs.REPEAT_OF, earlier[0].number)
            self.study.tell(trial, earlier[0].values if self.pareto else earlier[0].value)
            self.progress.note(f"search proposed {arm.name} again: not retrained")
        self.log("the sampler keeps proposing arms already run: this search slot ends without a new arm")
        self._finish(slot)


def died(why: str, times: int) -> dict[str, Any]:
    """The failure record of a run whose worker process died every time it trained it."""
    reason = f"its worker process died {times} times while training it (last: {why}); killed for memory?"
    return {"reason": reason, "component": "", "type": "WorkerDied", "message": reason, "traceback": ""}


def _spec(config: StudyConfig, arm: Any, seed: int) -> RunSpec:

    return run_spec(config, arm, seed)
