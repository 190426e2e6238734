"""The CLI process's start-up tricks, in one place: each makes every command start sooner, none
changes what a command does. `cli/main.py` calls `begin()` on its first lines, before argparse and
the rest are imported.

Measured here (2 cores shared with other work, load 2.7-3; cgroup v1 hybrid; kernel 6.18): wall time
of the console script, medians of 25 interleaved runs per variant, each trick turned off alone;
`composer ps` on a one-service stack. All on: `container run --rm --network none busybox true`
82.5 ms, `ps` 58.4 ms (before this module: 83.2 / 63.6 ms, the same code spread over cli/).

1. The cgroup warm-up (`warm`): moving a process into a cgroup (writing cgroup.procs, v1 or v2)
   takes the global cgroup_threadgroup_rwsem for writing, and the first such write after a quiet
   spell waits for a full RCU grace period (rcu_sync_enter) while holding cgroup_mutex, so even a
   cgroup mkdir queues behind it; writes that follow within about one grace period are fast. So a
   command that will start containers moves its own pid to where it already is (nothing changes)
   from a bare `_thread` (threading costs ~0.5 ms) every 10 ms from its first line: the grace
   period passes while the CLI imports and reads the stack. It stops at the first container's move
   into its cgroup (`runtime.cgroups.base.after_first_move`), when `up` has started what it starts,
   when the command ends, and after MAX_SECONDS at most: each write takes cgroup_mutex, a host-wide
   lock, so it writes only in the window before that first move.
   Saves: the first container's move 0.32 ms instead of 9.3-11.7 ms (its cgroup's mkdirs and
   limits 0.6 ms either way); `container run` 82.5 ms instead of 94.4 ms. (`ps` does not warm.)
2. The code cache for dataclasses (`install_code_cache`): each command defines 50-90 dataclasses
   while importing, and `dataclasses` writes and compiles the source of each one's __init__,
   __repr__, __eq__... (~280 compiles). Compiling the same text gives the same code object, so the
   code objects are kept in one marshal file per command beside the package's bytecode, keyed by
   the exact source text, each entry decoded only when used (decoding every command's ~750 would
   cost 4-19 ms). Only the name `exec` inside the dataclasses module is rebound (its global shadows
   the builtin), no private function of the stdlib is copied. A missing, foreign or unreadable
   file, an unwritable directory or $COMPOSER_NO_CODE_CACHE: plain dataclasses.
   Saves: `container run` 82.5 ms instead of 97.0 ms, `ps` 58.4 ms instead of 72.7 ms.
3. Stand-ins for `gettext` and `inspect` (`stand_ins`): argparse translates each of its messages
   through gettext, and each lookup searches the locale dirs for a catalog (and imports `locale`);
   no catalog for argparse's domain is ever installed, so identity functions give the same text.
   `dataclasses` imports `inspect` (ast, dis, tokenize...) only to write the docstring of a class
   that has none. Each stand-in loads the real module on the first attribute it lacks.
   Saves: 8 ms of imports (`python -X importtime`, `container run`: 41.1 ms of imports instead of
   49.1, median of 11), `container run` 82.5 ms instead of 91.1 ms, `ps` 58.4 instead of 68.1 ms.
4. The regex cache (`install_regex_cache`): re parses and compiles every pattern in Python, in every
   process: ~40 patterns (yaml's resolver and reader, json, argparse, the config loader) cost
   ~10 ms of every `down` or `up`. The program re._compiler hands to `_sre.compile` is kept per
   pattern and flags (marshalled, one file per command like 2., decoded on use, dropped when the
   interpreter's version or _sre.MAGIC differs) and handed over directly the next time.
   Saves (medians of 21-25 interleaved runs, load 3-4): a `down` with nothing to do 82-85 ms
   instead of 92-94 ms; `config -q` 62 instead of 67 ms.
5. The lean `ps` (cli/leanps.py, called by cli/main.py before this module's other tricks): `ps`
   into a pipe answered from spec.json and state.json before argparse, dataclasses, re and json
   load (the status derived by runtime.container.state, the texts of ui.texts: the same code the
   full path runs); any other command line falls through untouched. With it, `./dev` writes the
   console script: pip's imports re to strip a Windows suffix from argv[0] (~7 ms), and site
   (~1.5 ms of .pth files) runs only after `ps` had its chance (`python -S` and site.main()).
   Saves: `ps` of the 3-service bench stack 16.6 ms instead of 40.1 ms (docker compose v2: 32.6 ms;
   a bare `python -c pass` 13.1 ms), medians of 25 interleaved runs.
"""

from __future__ import annotations

import _thread
import atexit
import builtins
import marshal
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def begin(warm_up: bool, argv: Sequence[str]) -> None:
    """All of them, in the order they need: the warm-up first (its head start is the point), the
    stand-ins before anything imports argparse or dataclasses, the caches before any module that
    compiles a regular expression or defines a dataclass."""
    if warm_up:
        warm()
    stand_ins()
    part = cache_part(argv)
    install_regex_cache(part)
    install_code_cache(part)


# ---------------------------------------------------------------- 1. the cgroup warm-up

PERIOD = 0.010  # well inside one grace period (the sync state goes idle one GP after the last write)
MAX_SECONDS = 10.0

_stop: "_thread.LockType | None" = None
writes = 0  # warm-up writes made by this process (tests watch it stop)


def own_procs_file() -> str | None:
    """cgroup.procs of the cgroup this process is in: the v2 one if mounted, else a v1 one."""
    try:
        with open("/proc/self/cgroup") as f:
            cgroup = f.read()
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    except OSError:
        return None
    return procs_file(cgroup, mountinfo, os.path.exists)


def procs_file(cgroup: str, mountinfo: str, exists: Callable[[str], bool]) -> str | None:
    entries = [line.split(":", 2) for line in cgroup.splitlines() if line.count(":") >= 2]
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" in fields and len(fields) >= fields.index("-") + 4:
            sep = fields.index("-")
            mounts.append((fields[3], fields[4], fields[sep + 1], set(fields[sep + 3].split(","))))
    for _hid, ctrls, path in sorted(entries, key=lambda e: e[1] != ""):  # v2 first
        for root, point, fstype, opts in mounts:
            v2 = ctrls == "" and fstype == "cgroup2"
            v1 = ctrls != "" and fstype == "cgroup" and set(ctrls.split(",")) <= opts
            root = root.rstrip("/")
            if (v2 or v1) and (path + "/").startswith(root + "/"):
                candidate = os.path.join(point, path[len(root):].lstrip("/"), "cgroup.procs")
                if exists(candidate):
                    return candidate
    return None


def _poke(stop: "_thread.LockType", seconds: float, path: str | None) -> None:
    global writes
    path = path or own_procs_file()  # here, not in warm(): its reads and parsing overlap the imports too
    if path is None:
        return
    pid = str(os.getpid()).encode()
    for _ in range(int(seconds / PERIOD)):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        except OSError:
            return  # a cgroup layout where this fails: no warm-up
        writes += 1
        if stop.acquire(timeout=PERIOD):  # released by stop_warming()
            return


def warm(seconds: float = MAX_SECONDS, procs: str | None = None) -> None:
    """Begin warming (root only, unless `procs` names the file to write; a no-op when already
    warming or with $COMPOSER_NO_WARMUP). The thread is a daemon in effect: it never holds up the
    exit."""
    global _stop
    if _stop is not None or os.environ.get("COMPOSER_NO_WARMUP") or (procs is None and os.geteuid() != 0):
        return
    _stop = _thread.allocate_lock()
    _stop.acquire()
    _thread.start_new_thread(_poke, (_stop, seconds, procs))


def warming() -> bool:
    return _stop is not None


def stop_warming() -> None:
    """End the warm-up: the first container has moved, or the command starts none. Idempotent."""
    global _stop
    stop, _stop = _stop, None
    if stop is not None:
        stop.release()


# ---------------------------------------------------------------- 2. the dataclasses code cache

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
CODE_CACHE = os.path.join(_DIR, f"dataclass-code.{sys.implementation.cache_tag}.marshal")  # one per command
_MAX_ENTRIES = 4000  # stale entries pile up as the code changes: start afresh past this
_cache: dict[str, bytes] = {}  # source text -> marshal.dumps(code)
_new: dict[str, bytes] = {}

# Which cache file a command line loads: one per command (and container verb).
_CACHE_PARTS = {"up", "down", "ps", "logs", "start", "stop", "restart", "kill", "rm", "create", "exec", "run",
                "config", "build", "pull", "images", "image", "network", "ls", "wait", "events", "scale", "top",
                "graph"}
_CONTAINER_VERBS = {"run", "create", "start", "ls", "ps", "list", "logs", "stop", "kill", "rm", "exec", "inspect",
                    "wait", "pause", "unpause"}


def cache_part(argv: Sequence[str]) -> str:
    """The cache file's part of the name for a command line (`container run` then loads the ~60
    entries it uses, not all ~760 of every command: ~1.5 ms)."""
    words = [w for w in list(argv)[:4] if w.isascii() and w.isalpha() and w.islower() and len(w) <= 10][:2]
    if words[:1] == ["container"]:
        return "-".join(words) if words[1:] and words[1] in _CONTAINER_VERBS else "container"
    # a word that is no command (a typo, a global option's value) must not make a file of its own
    return words[0] if words and words[0] in _CACHE_PARTS else "other"


def _load(path: str) -> dict[str, bytes]:
    """The cache, if it is a plain file that only root or we could have written."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                return {}
            data = marshal.loads(f.read())  # one read: marshal.load reads object by object (~0.5 ms more)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _exec(source, globals=None, locals=None, /):
    if type(source) is str:
        text, packed = source, _cache.get(source)
        source = None
        if type(packed) is bytes:
            try:
                source = marshal.loads(packed)
            except (EOFError, ValueError, TypeError):
                pass
        if source is None:
            source = compile(text, "<string>", "exec")
            _new[text] = _cache[text] = marshal.dumps(source)
    return builtins.exec(source, globals, locals)


def _save() -> None:
    if not _new:
        return
    _write_marshal(CODE_CACHE, _cache if len(_cache) <= _MAX_ENTRIES else _new)


def _write_marshal(path: str, data: dict) -> None:
    """The cache file, replaced whole (readers see the old one or the new one); best effort."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except (OSError, ValueError):  # ValueError: an unmarshallable value
        try:
            os.unlink(tmp)
        except OSError:
            pass


def install_code_cache(part: str = "") -> None:
    """Idempotent. Call before the modules that define dataclasses are imported. part: [a-z0-9-]."""
    global CODE_CACHE
    if part and part.replace("-", "").isalnum() and part.isascii() and len(part) <= 40:
        CODE_CACHE = os.path.join(_DIR, f"dataclass-code.{part}.{sys.implementation.cache_tag}.marshal")
    import dataclasses  # after stand_ins(): it imports inspect

    if getattr(dataclasses, "exec", None) is _exec or not hasattr(dataclasses, "_create_fn"):
        return  # done already, or a dataclasses that does not compile per method (3.13+)
    if os.environ.get("COMPOSER_NO_CODE_CACHE"):
        return
    _cache.update(_load(CODE_CACHE))
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    if os.access(_DIR, os.W_OK):
        atexit.register(_save)


# ---------------------------------------------------------------- 3. stand-ins for gettext and inspect


class _LazyModule(type(sys)):
    """Stands in for a stdlib module until an attribute it lacks is used; that loads the real
    module, which then replaces this one in sys.modules."""

    def __getattr__(self, name: str):
        if name == "__path__":  # asked by every `from x import y`: a module, not a package
            raise AttributeError(name)
        sys.modules.pop(self.__name__, None)
        import importlib

        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)


def _stand_in(name: str, **attrs: object) -> None:
    if name not in sys.modules:
        module = _LazyModule(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def stand_ins() -> None:
    _stand_in("inspect")
    _stand_in("gettext", gettext=lambda message: message,
              ngettext=lambda singular, plural, n: singular if n == 1 else plural)


# ---------------------------------------------------------------- 4. the regex cache

REGEX_CACHE = os.path.join(_DIR, f"regex.{sys.implementation.cache_tag}.marshal")
_regexes: dict = {}  # (pattern, flags) -> the rest of _sre.compile's arguments
_new_regexes: dict = {}


class _Recorder:
    """Stands for `_sre` inside re._compiler while one pattern compiles the usual way (`key`, under
    `_regex_lock`): its `compile` keeps the arguments it gets, the pattern's program, for the
    cache; everything else is _sre's own."""

    def __init__(self, real) -> None:
        self._real = real
        self.key: tuple | None = None

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def compile(self, pattern, flags, code, groups, groupindex, indexgroup):
        if self.key is not None and pattern is self.key[0]:
            # plain ints: the opcodes are re._constants' named int subclass, which marshal refuses
            # kept marshalled, decoded on use: loading every command's patterns as lists would cost more
            _new_regexes[self.key] = _regexes[self.key] = marshal.dumps(
                (int(flags), [int(c) for c in code], int(groups), dict(groupindex), tuple(indexgroup)))
        return self._real.compile(pattern, flags, code, groups, groupindex, indexgroup)


_regex_lock = _thread.allocate_lock()


def install_regex_cache(part: str = "") -> None:
    """Idempotent. re parses and compiles each pattern in Python, again in every process; this
    keeps what re._compiler hands to `_sre.compile` (the pattern's program), per pattern and
    flags, and hands it over directly the next time. Only the names `compile` and `_sre` inside
    re._compiler are rebound (the second only while a pattern compiles the usual way)."""
    import re
    from re import _compiler

    if getattr(_compiler.compile, "_composer", False) or os.environ.get("COMPOSER_NO_CODE_CACHE"):
        return
    import _sre

    global REGEX_CACHE
    if part and part.replace("-", "").isalnum() and part.isascii() and len(part) <= 40:
        REGEX_CACHE = os.path.join(_DIR, f"regex.{part}.{sys.implementation.cache_tag}.marshal")
    data = _load(REGEX_CACHE)
    if data.pop("", None) == (sys.version, _sre.MAGIC):  # the program's format is the interpreter's
        _regexes.update(data)
    parse_and_compile = _compiler.compile
    recorder = _Recorder(_sre)
    debug = int(re.DEBUG)

    def compile(p, flags=0):
        if type(p) not in (str, bytes) or flags & debug:
            return parse_and_compile(p, flags)
        packed = _regexes.get((p, flags))
        if type(packed) is bytes:
            try:
                return _sre.compile(p, *marshal.loads(packed))
            except (EOFError, TypeError, ValueError, RuntimeError):  # RuntimeError: _sre found the program invalid
                pass
        with _regex_lock:
            recorder.key = (p, flags)
            _compiler._sre = recorder
            try:
                return parse_and_compile(p, flags)
            finally:
                _compiler._sre = _sre
                recorder.key = None

    compile._composer = True  # type: ignore[attr-defined]
    _compiler.compile = compile
    if os.access(_DIR, os.W_OK):
        atexit.register(_save_regexes, _sre.MAGIC)


def _save_regexes(magic: int) -> None:
    if not _new_regexes:
        return
    data = _regexes if len(_regexes) <= _MAX_ENTRIES else dict(_new_regexes)
    data[""] = (sys.version, magic)
    _write_marshal(REGEX_CACHE, data)
