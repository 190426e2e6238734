"""A small dependency graph (Dag) and running a function over its nodes: topological generations one after the
other, the nodes of one generation in parallel on a thread pool. Errors are collected, not raised,
so one failed service does not hide what happened to the others; the dependents of a failed node
are skipped. Ctrl-C cancels what has not started, lets running calls finish (a half-started
container is worse than a started one) and raises Interrupted.

Edges point from a dependency to its dependent (db -> web): generations then start with db.
Dag replaces networkx here: importing networkx cost ~70 ms of a ~240 ms `up` that has nothing to
do; a stack's graph has tens of nodes. Anything with the same few methods (a networkx DiGraph too)
works with generations/run_graph."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from composer.errors import ComposerError, Interrupted

if TYPE_CHECKING:
    import networkx as nx

MAX_WORKERS = 16


class Dag:
    """Directed graph over hashable nodes: the subset of networkx.DiGraph that composer uses."""

    def __init__(self, edges: Iterable[tuple[Hashable, Hashable]] = ()) -> None:
        self._succ: dict[Hashable, dict[Hashable, None]] = {}
        self._pred: dict[Hashable, dict[Hashable, None]] = {}
        self.add_edges_from(edges)

    def add_node(self, n: Hashable) -> None:
        self._succ.setdefault(n, {})
        self._pred.setdefault(n, {})

    def add_nodes_from(self, nodes: Iterable[Hashable]) -> None:
        for n in nodes:
            self.add_node(n)

    def add_edge(self, a: Hashable, b: Hashable) -> None:
        self.add_node(a)
        self.add_node(b)
        self._succ[a][b] = None
        self._pred[b][a] = None

    def add_edges_from(self, edges: Iterable[tuple[Hashable, Hashable]]) -> None:
        for a, b in edges:
            self.add_edge(a, b)

    def __iter__(self):
        return iter(self._succ)

    def __contains__(self, n: object) -> bool:
        return n in self._succ

    def __len__(self) -> int:
        return len(self._succ)

    @property
    def edges(self) -> list[tuple[Hashable, Hashable]]:
        return [(a, b) for a, bs in self._succ.items() for b in bs]

    def successors(self, n: Hashable) -> Iterable[Hashable]:
        return iter(self._succ[n])

    def predecessors(self, n: Hashable) -> Iterable[Hashable]:
        return iter(self._pred[n])

    def subgraph(self, nodes: Iterable[Hashable]) -> "Dag":
        keep = {n for n in nodes if n in self._succ}
        g = Dag()
        g.add_nodes_from(n for n in self._succ if n in keep)
        g.add_edges_from((a, b) for a, b in self.edges if a in keep and b in keep)
        return g

    def ancestors(self, n: Hashable) -> set[Hashable]:
        seen: set[Hashable] = set()
        todo = list(self._pred[n])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += self._pred[m]
        return seen

    def find_cycle(self) -> list[Hashable] | None:
        """The nodes of one cycle, in order, or None."""
        state: dict[Hashable, int] = {}
        for root in self._succ:
            stack: list[tuple[Hashable, Iterator]] = []
            path: list[Hashable] = []
            if state.get(root):
                continue
            state[root] = 1
            stack.append((root, iter(self._succ[root])))
            path.append(root)
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                elif state.get(nxt) == 1:
                    return path[path.index(nxt):]
                elif not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, iter(self._succ[nxt])))
                    path.append(nxt)
        return None


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


def generations(graph: "Dag | nx.DiGraph", nodes: Iterable[Hashable] | None = None, *,
                reverse: bool = False) -> list[list[Hashable]]:
    """Topological generations of the subgraph on `nodes` (all by default), sorted within each;
    reversed for stopping (dependents first)."""
    g = graph if nodes is None else graph.subgraph(list(nodes))
    indegree = {n: sum(1 for _ in g.predecessors(n)) for n in g}
    gens = []
    ready = [n for n, d in indegree.items() if d == 0]
    while ready:
        gens.append(sorted(ready, key=str))
        nxt = []
        for n in ready:
            for m in g.successors(n):
                indegree[m] -= 1
                if indegree[m] == 0:
                    nxt.append(m)
        ready = nxt
    if sum(map(len, gens)) != len(indegree):
        raise ValueError("the graph has a cycle")
    return gens[::-1] if reverse else gens


def run_graph(graph: "Dag | nx.DiGraph", fn: Callable[[Hashable], Any], *, nodes: Iterable[Hashable] | None = None,
              reverse: bool = False, skip_dependents: bool = True,
              between: Callable[[list[Hashable]], None] | None = None,
              workers: int = MAX_WORKERS) -> Outcome:
    """fn(node) for every node, generation by generation. `between(gen)` runs in the calling
    thread after each generation (e.g. to refresh /etc/hosts files)."""
    out = Outcome()
    g = graph if nodes is None else graph.subgraph(list(nodes))
    for gen in generations(g, reverse=reverse):
        todo = []
        for node in gen:
            failed = _failed_neighbour(g, node, out, reverse) if skip_dependents else None
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


def _failed_neighbour(g: "Dag | nx.DiGraph", node: Hashable, out: Outcome, reverse: bool) -> Hashable | None:
    deps = g.successors(node) if reverse else g.predecessors(node)
    for dep in deps:
        if dep in out.errors or dep in out.skipped:
            return dep
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
