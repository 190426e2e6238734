"""File events through watchdog's inotify fd (watchdog.observers.inotify_c.InotifyFD), one
non-recursive watch per directory a rule can sync: a directory the rule's ignore set prunes
(`node_modules/`, `.git/`) costs no watch, unlike a recursive observer's. A new directory gets its
watch and is scanned at once (files written before the watch existed are reported); a directory
deleted or moved away loses its watches. Single files (a rule on one file, the stack files) are
watched through their directory, filtered by name.

A full kernel queue loses events: watchdog calls on_events_lost, and the owner is told to rescan.
Running out of `fs.inotify.max_user_watches` is one WatchLimitError saying how many the rules need."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable

from watchdog.observers.inotify_c import InotifyConstants as C
from watchdog.observers.inotify_c import InotifyEvent, InotifyFD

from composer.errors import ComposerError

MASK = (C.IN_CLOSE_WRITE | C.IN_ATTRIB | C.IN_CREATE | C.IN_DELETE | C.IN_MOVED_FROM | C.IN_MOVED_TO
        | C.IN_DELETE_SELF | C.IN_MOVE_SELF | C.IN_ONLYDIR)
LIMIT = "/proc/sys/fs/inotify/max_user_watches"
_ID = 1  # this watcher's callback id on every watch it owns


class WatchLimitError(ComposerError):
    exit_code = 1


def max_user_watches() -> int | None:
    try:
        with open(LIMIT) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


class Tree:
    """A directory tree to watch: prune(dir) says a directory (and all below) needs no watch."""

    def __init__(self, root: str, prune: Callable[[str], bool]) -> None:
        self.root, self.prune = root, prune

    def holds(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + "/")


class Watcher:
    """Reports changed paths to `changed(path)`; `lost()` when the kernel dropped events."""

    def __init__(self, changed: Callable[[str], None], lost: Callable[[], None], *, every_name: bool = False) -> None:
        """every_name: report every name in the directories of single watched files too (so
        --verbose can say a file there matches no rule)."""
        self.changed, self.lost, self.every_name = changed, lost, every_name
        self._lock = threading.RLock()
        self._dirs: dict[int, str] = {}  # wd -> directory
        self._wds: dict[str, int] = {}
        self._trees: list[Tree] = []
        self._files: dict[str, set[str]] = {}  # directory -> names watched there on their own
        self._fd = InotifyFD()
        self._fd.start()

    @property
    def watches(self) -> int:
        return len(self._wds)

    # ------------------------------------------------------------ what to watch

    def add_tree(self, tree: Tree) -> int:
        """Watch tree's directories; returns how many watches it took."""
        with self._lock:
            self._trees.append(tree)
        return len(self._cover(tree, tree.root, report=False))

    def add_file(self, path: str) -> None:
        parent, name = os.path.split(path)
        with self._lock:
            self._files.setdefault(parent, set()).add(name)
        if os.path.isdir(parent):
            self._add(parent)

    def close(self) -> None:
        self._fd.stop()  # closes the fd and its watches; the reader thread ends
        self._fd.join(timeout=5)

    def rescan(self) -> None:
        """After lost events: watch what is not watched yet (directories made meanwhile)."""
        for tree in list(self._trees):
            self._cover(tree, tree.root, report=False)

    @staticmethod
    def _dirs_of(tree: Tree):
        """The directories tree needs watched, as they are now (for the limit's message)."""
        stack = [tree.root]
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False) and not tree.prune(e.path))
            except OSError:
                continue
            yield d

    def _cover(self, tree: Tree, top: str, *, report: bool) -> list[str]:
        """Watch top and every directory below it that tree does not prune, each one *before* it is
        listed: whatever appears in it later is an event, whatever was there already is seen by the
        listing (walking first and watching after loses what is made in between, e.g. by one
        `mkdir -p a/b/c`). report: tell the owner about every entry found (written before its
        directory's watch existed). Returns the directories watched."""
        try:
            if not stat.S_ISDIR(os.lstat(top).st_mode):
                return []
        except OSError:
            return []
        covered: list[str] = []
        stack = [top]
        while stack:
            d = stack.pop()
            if not self._add(d):
                continue
            covered.append(d)
            try:
                with os.scandir(d) as it:
                    for e in it:
                        if report:
                            self.changed(e.path)
                        if e.is_dir(follow_symlinks=False) and not tree.prune(e.path):
                            stack.append(e.path)
            except OSError:
                continue
        return covered

    def _add(self, d: str) -> bool:
        """Watch directory d; False when it is gone (or no directory) by now."""
        if d in self._wds:
            return True
        try:
            wd = self._fd.add_callback(os.fsencode(d), MASK, self, _ID)
        except OSError as err:
            if err.errno == 28:  # ENOSPC: the user's watch limit
                need = sum(1 for t in self._trees for x in self._dirs_of(t) if x not in self._wds)
                raise WatchLimitError(
                    f"inotify watch limit reached: the watch rules need {max(need, 1)} "
                    f"more watches ({len(self._wds)} in use by this watch) and fs.inotify.max_user_watches "
                    f"is {max_user_watches()}",
                    hint="raise it, e.g. `sysctl fs.inotify.max_user_watches=524288`, or ignore more "
                         "directories in the rules") from None
            if err.errno in (2, 20):  # gone or not a directory meanwhile
                return False
            raise
        with self._lock:
            old = self._dirs.get(wd)
            if old is not None:
                self._wds.pop(old, None)
            self._dirs[wd] = d
            self._wds[d] = wd
        return True

    def _forget_under(self, path: str) -> None:
        with self._lock:
            gone = [(d, wd) for d, wd in self._wds.items() if d == path or d.startswith(path + "/")]
            for d, wd in gone:
                self._wds.pop(d, None)
                self._dirs.pop(wd, None)
        if gone:
            self._fd.remove_callbacks([(wd, _ID) for _, wd in gone])

    def _tree_of(self, path: str) -> Tree | None:
        for t in self._trees:
            if t.holds(path):
                return t
        return None

    # ------------------------------------------------------------ watchdog's WatchCallback

    def on_event(self, event: InotifyEvent) -> None:
        with self._lock:
            d = self._dirs.get(event.wd)
        if d is None:
            return
        if event.is_delete_self or event.is_move_self:
            self.changed(d)
            return
        path = os.path.join(d, os.fsdecode(event.name))
        tree = self._tree_of(path)
        if tree is None:
            if self.every_name or os.fsdecode(event.name) in self._files.get(d, ()):
                self.changed(path)
            return
        if event.is_directory:
            if event.is_create or event.is_moved_to:
                self.changed(path)
                if not tree.prune(path):
                    self._cover(tree, path, report=True)
                return
            if event.is_moved_from or event.is_delete:
                self._forget_under(path)
        self.changed(path)

    def on_watch_deleted(self, wd: int) -> None:
        with self._lock:
            d = self._dirs.pop(wd, None)
            if d is not None and self._wds.get(d) == wd:
                del self._wds[d]

    def on_queue_overflow(self) -> None:
        pass

    def on_events_lost(self) -> None:
        self.lost()
