"""HostsBook: what the orchestrator knows about the running containers' `/etc/hosts`: the peers
(running containers a new container's hosts file lists), whether one came or went since the last
refresh (the dirty flag), and the entries already written into each running container's hosts file.

All three sit behind ONE lock and change only through these methods: containers start and stop on
worker threads while a refresh, between two generations of `up`, lists the runtime's containers
and writes hosts files. A refresh replaces the peers by what the runtime lists; a start or stop
that happens while the listing runs is journalled and applied on top, so the listing, older than
that change, never undoes it (the lost update the mixins had: `_peers` was rebound without the lock).

The I/O (listing containers, writing a hosts file, computing entries) is passed in: the book holds
no runtime, so its locking is tested on its own (tests/unit/test_hostsbook.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from composer.service.links import Peer, peer_from_info

Info = TypeVar("Info")


class HostsBook(Generic[Info]):
    def __init__(self, peer_of: Callable[[Any], Peer] = peer_from_info) -> None:
        self._peer_of = peer_of
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        self._written: dict[str, tuple] = {}
        self._dirty = False  # a container came or went since the last refresh
        # changes made while each listing in progress runs, by listing (journals are compared by
        # identity: two empty ones are equal)
        self._journals: dict[int, dict[str, Peer | None]] = {}

    # ------------------------------------------------------------ reads

    def peers(self) -> list[Peer]:
        """The running containers, as a snapshot."""
        with self._lock:
            return list(self._peers.values())

    @property
    def dirty(self) -> bool:
        with self._lock:
            return self._dirty

    def written(self, cid: str) -> tuple | None:
        with self._lock:
            return self._written.get(cid)

    # ------------------------------------------------------------ a container came or went

    def add(self, info: Any) -> None:
        """A container started: it is a peer now."""
        peer = self._peer_of(info)
        with self._lock:
            self._peers[peer.id] = peer
            self._dirty = True
            for journal in self._journals.values():
                journal[peer.id] = peer

    def forget(self, cid: str) -> None:
        """A container stopped or was removed: no peer, and what was written into it is gone."""
        with self._lock:
            self._peers.pop(cid, None)
            self._written.pop(cid, None)
            self._dirty = True
            for journal in self._journals.values():
                journal[cid] = None

    def mark_dirty(self) -> None:
        """A container came that the book did not start (a one-off started by its caller)."""
        with self._lock:
            self._dirty = True

    # ------------------------------------------------------------ the runtime's view

    def reload(self, list_running: Callable[[], Iterable[Info]]) -> list[Info]:
        """Peers := the running containers list_running() returns (its I/O runs outside the lock);
        starts and stops made meanwhile are applied on top. Returns the listing."""
        journal: dict[str, Peer | None] = {}
        with self._lock:
            self._journals[id(journal)] = journal
        try:
            running = list(list_running())
            listed = {p.id: p for p in map(self._peer_of, running)}
        except BaseException:
            with self._lock:
                del self._journals[id(journal)]
            raise
        with self._lock:
            del self._journals[id(journal)]
            for cid, peer in journal.items():
                if peer is None:
                    listed.pop(cid, None)
                else:
                    listed[cid] = peer
            self._peers = listed
        return running

    def refresh(self, list_running: Callable[[], Iterable[Info]],
                entries_for: Callable[[Info, Sequence[Peer]], tuple],
                write: Callable[[Info, tuple], bool], *, only_if_changed: bool = False) -> None:
        """Rewrite the hosts file of every running container whose entries changed: reload the
        peers, then write(info, entries) where entries differ from what was written (write returns
        False when the container has gone meanwhile). only_if_changed: nothing to do unless a
        container came or went since the last refresh (an `up` with nothing to do)."""
        with self._lock:
            if only_if_changed and not self._dirty:
                return
            self._dirty = False
        try:
            running = self.reload(list_running)
        except BaseException:
            self.mark_dirty()  # not refreshed: the next refresh must not skip
            raise
        peers = self.peers()
        for info in running:
            cid = self._peer_of(info).id
            entries = entries_for(info, peers)
            if self.written(cid) == entries:
                continue
            if not write(info, entries):
                continue
            with self._lock:
                if cid in self._peers:  # not stopped meanwhile: forget() dropped its record
                    self._written[cid] = entries
