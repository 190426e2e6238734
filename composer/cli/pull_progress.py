"""Progress of `image pull` / `image push`: rich bars per layer on a terminal, docker-like lines
("<id>: Pull complete") otherwise. Callbacks come from download threads; rich's Progress is
thread-safe, the plain printer takes a lock."""

from __future__ import annotations

import sys
import threading
from typing import Any


class TransferDisplay:
    def __init__(self, verb: str = "Pull", quiet: bool = False) -> None:
        self.verb, self.quiet = verb, quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.lock = threading.Lock()
        self.tasks: dict[str, Any] = {}
        self.progress: Any = None

    def __enter__(self) -> "TransferDisplay":
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self.progress = Progress(TextColumn("{task.fields[layer]}"), TextColumn("{task.description:<16}"),
                                     BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                     console=Console(stderr=True), transient=False)
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Any) -> None:
        phase, key = event.phase, event.id
        text = {"waiting": "Waiting", "downloading": "Downloading", "exists": "Already exists",
                "done": f"{self.verb} complete", "pushing": "Pushing", "pushed": "Pushed",
                "mounted": "Mounted"}.get(phase)
        if text is None:  # whole-image phases
            if phase == "resolving":
                self._line(f"{self.verb}ing {key}")
            return
        if self.progress is None:
            if phase not in ("downloading", "waiting", "pushing"):
                self._line(f"{key}: {text}")
            return
        with self.lock:
            task = self.tasks.get(key)
            if task is None:
                task = self.tasks[key] = self.progress.add_task(text, total=event.total or None, layer=key)
        done = event.total if phase in ("exists", "done", "pushed", "mounted") else getattr(event, "current", 0)
        self.progress.update(task, description=text, completed=done, total=event.total or None)

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            if self.progress is not None:
                self.progress.console.print(text, highlight=False, markup=False)
            else:
                sys.stderr.write(text + "\n")
