"""A per-server queue for trainings started from the app, so one person cannot exhaust the machine.

The app trains inside the Streamlit server process, one script run per browser session. Every
training takes a slot from :data:`TRAINING_SLOTS` first:

* a browser session holds at most one slot: a second training from the same session, while its first
  still runs (another tab of the same session, a double click), is refused with a LimitError;
* at most :data:`recsys_core.limits.MAX_CONCURRENT_TRAININGS` slots are held at once in the server;
  later sessions wait in first-come order, and ``on_wait`` is called about twice a second with their
  place in the queue (the app shows it; Streamlit's stop/rerun raises from inside that call, which
  removes the waiter from the queue).

The queue lives in this module, one per process (= per server); it is plain threading, so
``recsys_core`` stays free of Streamlit and nothing shared is kept in ``st.cache_resource``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import limits
from .errors import LimitError


@dataclass
class TrainingSlots:
    """At most ``capacity`` holders at once, one per session, the rest queued in arrival order."""

    capacity: int
    _lock: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _holders: set[str] = field(default_factory=set, repr=False)
    _waiting: deque[str] = field(default_factory=deque, repr=False)

    def running(self) -> int:
        with self._lock:
            return len(self._holders)

    def queued(self) -> int:
        with self._lock:
            return len(self._waiting)

    @contextlib.contextmanager
    def slot(self, session: str, on_wait: Callable[[int], None] | None = None, poll: float = 0.5) -> Iterator[None]:
        """Hold a slot for ``session`` while the block runs; wait (calling ``on_wait(place)``) while full."""
        with self._lock:
            if session in self._holders or session in self._waiting:
                raise LimitError(
                    "this browser session is already training a model",
                    "Wait for it to finish (or cancel it) before starting another; one training per user runs at a time.",
                )
            self._waiting.append(session)
        try:
            while True:
                with self._lock:
                    place = self._waiting.index(session)
                    if place == 0 and len(self._holders) < self.capacity:
                        self._waiting.popleft()
                        self._holders.add(session)
                        break
                    if on_wait is None:
                        self._lock.wait(poll)
                        continue
                on_wait(place + 1)
                with self._lock:
                    self._lock.wait(poll)
        except BaseException:
            with self._lock:
                if session in self._waiting:
                    self._waiting.remove(session)
                self._lock.notify_all()
            raise
        try:
            yield
        finally:
            with self._lock:
                self._holders.discard(session)
                self._lock.notify_all()


#: The server's queue (one per process).
TRAINING_SLOTS = TrainingSlots(limits.MAX_CONCURRENT_TRAININGS)
