"""HostsBook: peers added and removed on worker threads while refreshes list the runtime and write
hosts files, as during `up`. No start or stop may be lost to a refresh whose listing is older than
it, and nothing is recorded as written into a container that went away."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from composer.project.hostsbook import HostsBook


@dataclass(frozen=True)
class Peer:
    id: str


class Runtime:
    """The truth: which containers run. Listing it takes a while (the refresh's race window)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.writes = 0

    def list(self) -> list[str]:
        with self.lock:
            out = sorted(self.running)
        time.sleep(random.random() / 2000)  # the runtime's state moves on meanwhile
        return out

    def write(self, cid: str, entries: tuple) -> bool:
        with self.lock:
            if cid not in self.running:
                return False
            self.writes += 1
            return True


def test_concurrent_starts_stops_and_refreshes_lose_no_update():
    book: HostsBook = HostsBook(peer_of=Peer)
    rt = Runtime()
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(n: int) -> None:  # starts and stops of its own containers, as ContainerSteps tells the book
        rng = random.Random(n)
        mine: set[str] = set()
        try:
            for i in range(300):
                cid = f"c{n}-{i % 7}"
                if rng.random() < 0.6:
                    with rt.lock:
                        rt.running.add(cid)
                    book.add(cid)
                    mine.add(cid)
                else:
                    with rt.lock:
                        rt.running.discard(cid)
                    book.forget(cid)
                    mine.discard(cid)
                time.sleep(rng.random() / 2000)
                # at every moment, the book has what this worker last did to its containers
                assert {p.id for p in book.peers() if p.id.startswith(f"c{n}-")} == mine
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def refresher() -> None:
        try:
            while not stop.is_set():
                book.refresh(rt.list, lambda cid, peers: tuple(sorted(p.id for p in peers)), rt.write,
                             only_if_changed=random.random() < 0.5)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    refreshers = [threading.Thread(target=refresher) for _ in range(3)]
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in refreshers + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in refreshers:
        t.join()
    assert not errors
    assert rt.writes > 0  # the refreshes did run alongside
    # every start and stop is in the book, whatever the refreshes listed meanwhile
    assert {p.id for p in book.peers()} == rt.running
    # nothing recorded as written into a container that is gone
    assert all(book.written(cid) is None for cid in {f"c{n}-{i}" for n in range(6) for i in range(7)} - rt.running)
    # and a change after the last refresh is never skipped by the next "only if changed" one
    gone = sorted(rt.running)[0]
    rt.running.discard(gone)
    book.forget(gone)
    assert book.dirty
    book.refresh(rt.list, lambda cid, peers: tuple(sorted(p.id for p in peers)), rt.write, only_if_changed=True)
    assert not book.dirty and gone not in {p.id for p in book.peers()}
    assert all(book.written(cid) == tuple(sorted(rt.running)) for cid in rt.running)


def test_a_failed_listing_leaves_the_book_dirty():
    book: HostsBook = HostsBook(peer_of=Peer)
    book.add("a")

    def broken() -> list[str]:
        raise OSError("state dir gone")

    try:
        book.refresh(broken, lambda c, p: (), lambda c, e: True)
    except OSError:
        pass
    assert book.dirty and [p.id for p in book.peers()] == ["a"]
