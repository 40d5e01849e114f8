"""A coordinator's heartbeat: a thread of its own that tells other workers the
runs in training are alive, every few seconds. A missed beat (the storage away)
is noted through ablate.engine.store.db_patience and tried again at the next
beat, never retried in place. A run found taken over when the storage answers
(it was away, or this process stopped, past the grace) is this worker's no
longer: ``on_lost`` hears of it, so its outcome is dropped and the run trains once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ablate.engine.store import db_patience
from ablate.engine.store.run_claims import ClaimStore


class Heartbeat:
    def __init__(
        self,
        claims: ClaimStore,
        every: float,
        running: Callable[[], list[str]],
        on_lost: Callable[[set[str]], None],
    ):
        self.claims, self.every, self.running, self.on_lost = claims, every, running, on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat_forever, name="ablate-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.every):
            lost = db_patience.PATIENCE.attempt(self.claims.beat, self.running())
            if lost:
                self.on_lost(lost)
