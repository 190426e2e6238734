"""Changed paths -> batches. A batch closes once no change came for `quiet` seconds (an editor's
save is a burst of events: write, chmod, rename), or `cap` seconds after its first change, so a
long burst (`git checkout`, a build writing a thousand files) still produces batches as it goes."""

from __future__ import annotations

import threading
import time

QUIET = 0.02  # s: an editor's save ends well within it; docker compose waits 500 ms
CAP = 0.3  # s: the longest a change waits while others keep coming


class Debouncer:
    def __init__(self, quiet: float = QUIET, cap: float = CAP, clock=time.monotonic) -> None:
        self.quiet, self.cap, self.clock = quiet, cap, clock
        self._cond = threading.Condition()
        self._items: dict[object, None] = {}  # insertion-ordered set
        self._first = self._last = 0.0
        self._closed = False

    def add(self, item: object) -> None:
        with self._cond:
            now = self.clock()
            if not self._items:
                self._first = now
            self._items[item] = None
            self._last = now
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def get(self, timeout: float | None = None) -> list | None:
        """The next batch; [] when `timeout` passed without one; None once closed."""
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = self.clock()
                if self._items:  # a batch is forming: wait for it, whatever the timeout
                    due = min(self._last + self.quiet, self._first + self.cap)
                    if now >= due:
                        batch = list(self._items)
                        self._items.clear()
                        return batch
                    wait: float | None = due - now
                elif deadline is not None:
                    if now >= deadline:
                        return []
                    wait = deadline - now
                else:
                    wait = None
                self._cond.wait(wait)
