"""The dependency graph and running a function over its nodes: topological generations one after
the other, the nodes of one generation in parallel on a thread pool. Errors are collected, not
raised, so one failed service does not hide what happened to the others; the dependents of a
failed node are skipped. Ctrl-C cancels what has not started, lets running calls finish (a
half-started container is worse than a started one) and raises Interrupted.

A graph is a plain mapping, node -> the nodes it depends on (web -> (db,)): the input form of the
standard library's graphlib.TopologicalSorter, which orders the generations and finds cycles here
(networkx's `DiGraph.pred` has that form too). Not networkx itself: its import cost ~70 ms of a
~240 ms `up` that has nothing to do, and a stack's graph has tens of nodes; graphlib costs ~0.4 ms.
networkx draws the picture in `composer graph` (project/graph.py), where its import does not count."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from composer.errors import ComposerError, Interrupted

MAX_WORKERS = 16

Graph = Mapping[Hashable, Collection[Hashable]]  # node -> its dependencies


def nodes_of(graph: Graph) -> dict[Hashable, None]:
    """Every node, in order: the keys, then dependencies that are no key."""
    out = dict.fromkeys(graph)
    for deps in graph.values():
        out.update(dict.fromkeys(deps))
    return out


def subgraph(graph: Graph, nodes: Iterable[Hashable]) -> dict[Hashable, tuple[Hashable, ...]]:
    """The graph on `nodes` (those of them it has), every node a key, in the graph's order."""
    keep = set(nodes)
    return {n: tuple(d for d in graph.get(n, ()) if d in keep) for n in nodes_of(graph) if n in keep}


def ancestors(graph: Graph, node: Hashable) -> set[Hashable]:
    """Everything `node` depends on, directly or not."""
    seen: set[Hashable] = set()
    todo = list(graph.get(node, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += graph.get(n, ())
    return seen


def find_cycle(graph: Graph) -> list[Hashable] | None:
    """The nodes of one cycle, each a dependency of the next, the first repeated at the end
    ([db, app, db]); None when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        return list(err.args[1])
    return None


def generations(graph: Graph, nodes: Iterable[Hashable] | None = None, *,
                reverse: bool = False) -> list[list[Hashable]]:
    """Topological generations of the subgraph on `nodes` (all by default), sorted within each;
    reversed for stopping (dependents first). A cycle raises graphlib.CycleError (a ValueError)."""
    sorter = TopologicalSorter(graph if nodes is None else subgraph(graph, nodes))
    sorter.prepare()
    gens = []
    while sorter.is_active():
        ready = sorter.get_ready()
        gens.append(sorted(ready, key=str))
        sorter.done(*ready)
    return gens[::-1] if reverse else gens


class DependencyFailed(ComposerError):
    """A node was skipped because something it depends on failed."""


@dataclass
class Outcome:
    """The results and errors of a parallel run, by node, and the nodes skipped after a failure."""

    results: dict[Hashable, Any] = field(default_factory=dict)
    errors: dict[Hashable, BaseException] = field(default_factory=dict)
    skipped: dict[Hashable, Hashable] = field(default_factory=dict)  # node -> the failed dependency

    @property
    def ok(self) -> bool:
        return not self.errors and not self.skipped

    def raise_first(self) -> None:
        """Raise the first real error (not a skip), if any."""
        for err in self.errors.values():
            raise err


def run_graph(graph: Graph, fn: Callable[[Hashable], Any], *, nodes: Iterable[Hashable] | None = None,
              reverse: bool = False, skip_dependents: bool = True,
              between: Callable[[list[Hashable]], None] | None = None,
              workers: int = MAX_WORKERS) -> Outcome:
    """fn(node) for every node, generation by generation. `between(gen)` runs in the calling
    thread after each generation (e.g. to refresh /etc/hosts files)."""
    out = Outcome()
    g = subgraph(graph, nodes_of(graph) if nodes is None else nodes)
    # a node is skipped when a node it waits for failed: its dependencies, or its dependents in reverse
    waits_for: dict[Hashable, tuple[Hashable, ...]] = g
    if reverse:
        dependents: dict[Hashable, list[Hashable]] = {n: [] for n in g}
        for n, deps in g.items():
            for d in deps:
                dependents[d].append(n)
        waits_for = {n: tuple(ds) for n, ds in dependents.items()}
    for gen in generations(g, reverse=reverse):
        todo = []
        for node in gen:
            failed = _failed(waits_for[node], out) if skip_dependents else None
            if failed is not None:
                out.skipped[node] = failed
            else:
                todo.append(node)
        done = map_parallel(todo, fn, workers=workers)
        out.results.update(done.results)
        out.errors.update(done.errors)
        if between is not None and todo:
            between(todo)
    return out


def _failed(nodes: Iterable[Hashable], out: Outcome) -> Hashable | None:
    for n in nodes:
        if n in out.errors or n in out.skipped:
            return n
    return None


def map_parallel(items: Sequence[Hashable], fn: Callable[[Hashable], Any], *,
                 workers: int = MAX_WORKERS) -> Outcome:
    """fn over items on up to `workers` threads; one item runs in the calling thread (no thread).
    Plain threads, not concurrent.futures: its import (with logging's) cost every up and down ~5 ms."""
    out = Outcome()
    if not items:
        return out
    if len(items) == 1:
        try:
            out.results[items[0]] = fn(items[0])
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None
        except Exception as err:  # noqa: BLE001 - collected and reported per node
            out.errors[items[0]] = err
        return out
    todo = list(items)
    lock = threading.Lock()
    finished = threading.Event()
    left = [min(workers, len(todo))]  # threads still running
    cancelled = []

    def work() -> None:
        while True:
            with lock:
                if cancelled or not todo:
                    left[0] -= 1
                    if not left[0]:
                        finished.set()
                    return
                item = todo.pop(0)
            try:
                result = fn(item)
            except BaseException as err:  # noqa: BLE001 - collected and reported per node
                with lock:
                    out.errors[item] = err
            else:
                with lock:
                    out.results[item] = result

    for _ in range(left[0]):
        threading.Thread(target=work, name="composer", daemon=True).start()
    try:
        while not finished.wait(0.5):
            pass
    except KeyboardInterrupt:
        cancelled.append(True)  # what has not started is dropped; running calls finish
        finished.wait()  # a second Ctrl-C here leaves at once
        raise Interrupted("interrupted") from None
    return out


class Background:
    """Calls started one at a time, each on a thread of its own, joined together: e.g. `down`
    removes each container as soon as it has stopped, while the services it depends on still stop."""

    def __init__(self, workers: int = MAX_WORKERS) -> None:
        self.outcome = Outcome()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers)

    def start(self, key: Hashable, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        def run() -> None:
            with self._slots:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as err:  # noqa: BLE001 - collected, see join
                    with self._lock:
                        self.outcome.errors[key] = err
                    return
            with self._lock:
                self.outcome.results[key] = result

        thread = threading.Thread(target=run, name="composer", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> Outcome:
        """Wait for every call; Ctrl-C waits too (a second one leaves at once), then Interrupted."""
        try:
            for thread in self._threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            for thread in self._threads:
                thread.join()
            raise Interrupted("interrupted") from None
        return self.outcome


class Once:
    """A lock-protected flag: `first()` is True exactly once (warnings reported once)."""

    def __init__(self) -> None:
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True
