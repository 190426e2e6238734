"""`composer ps` answered from the files alone, before argparse and the rest of the CLI load
(composer/startup.py, 5., says what it saves, measured). It reads what Runtime.list reads
(spec.json, state.json) through the modules the runtime derives a status with, and renders with
ui.texts, so `ps` prints here what the full path prints, byte for byte
(tests/unit/test_leanps.py holds them equal).

It answers only command lines it fully understands: the plain table into a pipe or file, -a, -q,
--services, --status, --no-trunc and service names, with the project named by -p,
COMPOSE_PROJECT_NAME or stackfiles.fast_project_name. Anything else (a terminal, --format json,
-h, an option it does not know, a name only the config loader can tell) returns None and the full
CLI runs, which also gives every error message."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Sequence

# The global options (as cli/main.py declares them) and the ps options this path knows.
_GLOBAL_VALUES = {"-f": "files", "--file": "files", "-p": "project_name", "--project-name": "project_name",
                  "--project-directory": "project_directory", "--env-file": "env_files", "--profile": "profiles",
                  "--ansi": "ansi", "--progress": "progress"}
_CHOICES = {"ansi": ("never", "always", "auto"), "progress": ("auto", "tty", "plain", "quiet"),
            "status": ("paused", "restarting", "removing", "running", "dead", "created", "exited"),
            "format": ("table",)}
_PS_FLAGS = {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet", "--services": "services",
             "--no-trunc": "no_trunc"}
_PS_VALUES = {"--format": "format", "--status": "status"}
_LISTS = ("files", "env_files", "profiles", "status")

_HEX = frozenset("0123456789abcdef")


def run(argv: Sequence[str]) -> None:
    """Answer the command line and end the process, when this path can; else return, having
    changed nothing."""
    code = serve(argv)
    if code is not None:
        os._exit(code)


def serve(argv: Sequence[str], out=None) -> int | None:
    """The exit code once `ps` is answered on out (stdout), None when the full CLI must answer."""
    opts = parse(argv)
    out = sys.stdout if out is None else out
    if opts is None or out is None or _isatty(out):  # None: no fd 1 at all, the full CLI says so
        return None
    if opts.get("service_args"):  # whether they are services is the stack file's to say (full load)
        return None
    name = _project_name(opts)
    if name is None:
        return None
    try:
        infos = containers(name, opts)
    except _Unusual:  # a damaged record: the full path rebuilds it from the host and says so
        return None
    try:
        out.write(_render(infos, opts))
        out.flush()
    except BrokenPipeError:  # as cli/main.py: a reader that stopped early is no error
        return 0
    return 0


def parse(argv: Sequence[str]) -> dict | None:
    """The options of `[GLOBAL OPTIONS] ps [PS OPTIONS] [SERVICE...]`, or None for any other shape."""
    opts: dict = {k: [] for k in _LISTS}
    words = list(argv)
    i, command, after_names = 0, False, False
    while i < len(words):
        word = words[i]
        key, value, has_value = word, None, False
        if word.startswith("--") and "=" in word:
            key, value = word.split("=", 1)
            has_value = True
        table = _PS_VALUES if command else _GLOBAL_VALUES
        if key.startswith("-") and opts.get("service_args"):
            after_names = True  # argparse takes SERVICE... as one group: a name after this is an error
        if key in table:
            if not has_value:
                if i + 1 >= len(words) or words[i + 1].startswith("-"):
                    return None
                i += 1
                value = words[i]
            field = table[key]
            if field in _CHOICES and value not in _CHOICES[field]:
                return None
            if field in _LISTS:
                opts[field].append(value)
            else:
                opts[field] = value
        elif has_value:
            return None
        elif not command:
            if word != "ps":
                return None
            command = True
        elif word in _PS_FLAGS:
            opts[_PS_FLAGS[word]] = True
        elif not word.startswith("-") and not after_names:
            opts.setdefault("service_args", []).append(word)
        else:
            return None
        i += 1
    return opts if command else None


def _isatty(out) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def _project_name(opts: dict) -> str | None:
    """As cli.project_common.name_only: -p, else what a plain look at the files tells."""
    if opts.get("project_name"):
        return opts["project_name"].lower()
    from composer.stackfiles import fast_project_name

    return fast_project_name(opts["files"], opts.get("project_directory"), opts["env_files"], os.environ) or None


class _Unusual(Exception):
    """Something only the full path handles (runtime.records: damaged files are rebuilt)."""


class _Fields:
    """Attributes from a dict: a published port or a spec's port, as ui.texts reads them."""

    def __init__(self, d: dict) -> None:
        self.__dict__.update(d)


class _Info:
    """What ui.texts reads of a runtime ContainerInfo, taken from the same two files the same way
    (runtime.container.containers.Runtime._info)."""

    def __init__(self, id: str, spec: dict, s: dict, created_at: float | None, st, failure) -> None:
        self.id, self.name, self.image = id, spec["name"], spec["image"]
        self.labels = dict(spec.get("labels") or ())
        self.spec = _Fields({"image": spec["image"], "argv": spec["argv"],
                             "ports": tuple(_Fields(p) for p in spec.get("ports") or ())})
        self.status = status = st.derive_status(s)
        self.exit_code, self.oom_killed = s.get("exit_code"), bool(s.get("oom_killed"))
        self.created_at, self.started_at, self.finished_at = created_at, s.get("started_at"), s.get("finished_at")
        self.restart_count = int(s.get("restart_count", 0))
        self.ports = tuple(_Fields(d) for d in s.get("ports", ()))
        self.health = st.health(spec.get("healthcheck") is not None, s, status)
        self.supervised = status not in ("running", "paused") or st.monitor_alive(s)
        self.monitor_error = failure().summary(s) if "monitor_error" in s else None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    def label(self, key: str, default: str | None = None) -> str | None:
        return self.labels.get(key, default)


def containers(name: str, opts: dict) -> list[_Info]:
    """The project's containers as Query.containers and cmd_ps select and sort them."""
    st, failure, loads = _runtime_modules()
    state_dir = os.environ.get("COMPOSER_STATE_DIR") or "/run/composer"
    data_dir = os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer"
    show_all = bool(opts.get("all") or opts["status"])
    services = opts.get("service_args") or ()
    found = []
    try:
        ids = [n for n in os.listdir(os.path.join(data_dir, "containers")) if len(n) == 64 and _HEX.issuperset(n)]
    except FileNotFoundError:
        ids = []
    for id in ids:
        spec_path = os.path.join(data_dir, "containers", id, "spec.json")
        try:
            with open(spec_path) as f:
                spec = loads(f.read())
        except OSError:
            continue  # a dir without its spec: not a project's container (as Runtime._spec)
        except ValueError:
            raise _Unusual from None
        labels = dict(spec.get("labels") or ())
        if labels.get("composer.project") != name:
            continue
        s = _read_state(os.path.join(state_dir, "containers", id, st.STATE_FILE), loads)
        created = s["created_at"] if "created_at" in s else _mtime(spec_path)
        info = _Info(id, spec, s, created, st, failure)
        if not (show_all or info.running):
            continue
        if (labels.get("composer.oneoff") == "True") or (services and labels.get("composer.service") not in services):
            continue
        found.append(info)
    found.sort(key=lambda i: i.created_at or 0, reverse=True)  # Runtime.list's order, then ps's
    if opts["status"]:
        found = [i for i in found if i.status in opts["status"]]
    return sorted(found, key=lambda i: i.name)


def _read_state(path: str, loads) -> dict:
    """As runtime.container.state.read: {} when missing; a damaged one is for the full path."""
    try:
        with open(path) as f:
            return loads(f.read())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise _Unusual from None


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _runtime_modules():
    """runtime.container.state and the C JSON reader of runtime.monitor.logpump (and a loader of
    runtime.monitor.failure, for the rare state with a monitor_error)."""
    state, logpump = _runtime_import("container.state", "monitor.logpump")
    return state, lambda: _runtime_import("monitor.failure")[0], logpump.loads


def _runtime_import(*names: str) -> list:
    """composer.runtime.<name> for each name, without running composer/runtime/__init__.py (the
    Runtime API: dataclasses, re, json, ~15 ms): unless the package is loaded already, it is
    registered bare, by its path, as the lean runtime processes do (runtime/monitor/bootcode.py),
    and unregistered again once these are loaded (a later `import composer.runtime` in this
    process then gets the real package)."""
    bare = "composer.runtime" not in sys.modules
    if bare:
        pkg = type(sys)("composer.runtime")
        pkg.__path__ = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime")]
        sys.modules["composer.runtime"] = pkg
    try:
        for name in names:
            __import__(f"composer.runtime.{name}")
        return [sys.modules[f"composer.runtime.{name}"] for name in names]
    finally:
        if bare:
            for mod in [m for m in sys.modules if m == "composer.runtime" or m.startswith("composer.runtime.")]:
                del sys.modules[mod]


def _render(infos: list[_Info], opts: dict) -> str:
    from composer.ui import texts

    if opts.get("services"):
        return "".join(s + "\n" for s in sorted({i.label("composer.service", "") or "" for i in infos}))
    if opts.get("quiet"):
        return "".join(i.id + "\n" for i in infos)
    rows = [(i.name, i.spec.image, texts.command_text(i.spec.argv, not opts.get("no_trunc")),
             i.label("composer.service", "") or "", texts.ago(i.created_at), texts.status_text(i),
             texts.ports_text(i)) for i in infos]
    return texts.plain_table(texts.PS_HEADERS, rows)
