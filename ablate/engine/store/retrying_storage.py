"""Optuna's storage with every call made through ablate.engine.store.db_patience: a study's
reads and writes (``study.tell``, ``trial.report``, attributes) ride through a
database restart the way ablate's own bulk writes and claims do."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage

from ablate.engine.store import db_patience


class RetryingStorage(BaseStorage):
    """Delegates to ``inner`` (Optuna's cached RDB storage); public calls are retried.
    Other attributes (``_backend``: the RDB storage under the cache) pass through."""

    def __init__(self, inner: BaseStorage):
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_inner"], name)


def _retried(name: str) -> Any:
    def call(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return db_patience.PATIENCE.call(getattr(self._inner, name), *args, **kwargs)

    call.__name__ = name
    return call


for _name in [n for n in dir(BaseStorage) if not n.startswith("_") and callable(getattr(BaseStorage, n))]:
    setattr(RetryingStorage, _name, _retried(_name))
RetryingStorage.__abstractmethods__ = frozenset()  # every abstract method delegates (set above)


def retrying(storage: optuna.storages.RDBStorage) -> RetryingStorage:
    """The storage to open a study on: Optuna's cache over ``storage``, retried."""
    return RetryingStorage(optuna.storages.get_storage(storage))  # type: ignore[abstract]  # delegated above
