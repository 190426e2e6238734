"""Run a function over the nodes of a dependency graph: topological generations one after the
other, the nodes of one generation in parallel on a thread pool. Errors are collected, not raised,
so one failed service does not hide what happened to the others; the dependents of a failed node
are skipped. Ctrl-C cancels what has not started, lets running calls finish (a half-started
container is worse than a started one) and raises Interrupted.

Edges point from a dependency to its dependent (db -> web): generations then start with db."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from composer.errors import ComposerError, Interrupted

if TYPE_CHECKING:
    import networkx as nx

MAX_WORKERS = 16


class DependencyFailed(ComposerError):
    """A node was skipped because something it depends on failed."""


@dataclass
class Outcome:
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


def generations(graph: "nx.DiGraph", nodes: Iterable[Hashable] | None = None, *,
                reverse: bool = False) -> list[list[Hashable]]:
    """Topological generations of the subgraph on `nodes` (all by default), sorted within each;
    reversed for stopping (dependents first)."""
    import networkx as nx  # lazily: ~90 ms of import that read-only commands never need

    g = graph if nodes is None else graph.subgraph(nodes)
    gens = [sorted(gen, key=str) for gen in nx.topological_generations(g)]
    return gens[::-1] if reverse else gens


def run_graph(graph: "nx.DiGraph", fn: Callable[[Hashable], Any], *, nodes: Iterable[Hashable] | None = None,
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


def _failed_neighbour(g: "nx.DiGraph", node: Hashable, out: Outcome, reverse: bool) -> Hashable | None:
    deps = g.successors(node) if reverse else g.predecessors(node)
    for dep in deps:
        if dep in out.errors or dep in out.skipped:
            return dep
    return None


def map_parallel(items: Sequence[Hashable], fn: Callable[[Hashable], Any], *,
                 workers: int = MAX_WORKERS) -> Outcome:
    """fn over items on a pool; one item runs in the calling thread (no pool overhead)."""
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
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="composer")
    futures: dict[Future, Hashable] = {pool.submit(fn, item): item for item in items}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                _collect(out, futures[fut], fut)
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)  # a second Ctrl-C here leaves at once
        raise Interrupted("interrupted") from None
    pool.shutdown(wait=False)
    return out


def _collect(out: Outcome, item: Hashable, fut: Future) -> None:
    err = fut.exception()
    if err is None:
        out.results[item] = fut.result()
    else:
        out.errors[item] = err


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
