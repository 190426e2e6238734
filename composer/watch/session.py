"""The watch loop: bring the services up (unless told not to), watch what their rules cover and
the stack's own files, and act on each batch of changes through the project library: `build` and
`up` for a rebuild, `restart` for a restart (it takes the `depends_on: {x: {restart: true}}`
dependents along), the runtime's exec for a hook, sync.py for files. An edit of a stack file, an
env_file or `.env` re-reads the model and converges as `up` would; a model that no longer loads is
reported (file:line:key) and the stack stays as it was until the next good save.

Never prints: each batch ends in one WatchEvent per service, e.g. "synced 2 files (./app/src →
/app/src) in 14 ms, restarted in 180 ms"; a rule that cannot act (its path is gone, no container
runs, its exec failed) is one error event naming the service and rule, and the others go on."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from composer.config.model import Project
from composer.errors import ComposerError, UsageError
from composer.project.project import ProjectRunner, UpOptions
from composer.watch import plan as planmod
from composer.watch.debounce import Debouncer
from composer.watch.inotify import Tree, Watcher
from composer.watch.rules import Rule, bind_covering, compile_rules, stack_files
from composer.watch.sync import ContainerFiles, Counts

RESCAN = object()  # a batch item: the kernel dropped events, sync every rule again


@dataclass(frozen=True)
class WatchEvent:
    service: str  # "" for the stack as a whole
    text: str
    level: str = "info"  # info | warning | error | note (--verbose only)


@dataclass(frozen=True)
class WatchOptions:
    services: tuple[str, ...] = ()  # none: every service with develop.watch rules
    no_up: bool = False
    prune: bool = True  # remove the image a rebuild left dangling
    verbose: bool = False
    env_files: tuple[str, ...] = ()  # --env-file: their edits reload too
    up: UpOptions = field(default_factory=UpOptions)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


class WatchSession:
    """make_runner(model) -> a ProjectRunner for a (re)loaded model; load() -> the model as the
    stack files say now (raises ConfigError)."""

    def __init__(self, runner: ProjectRunner, *, load: Callable[[], Project],
                 make_runner: Callable[[Project], ProjectRunner], on_event: Callable[[WatchEvent], None],
                 opts: WatchOptions = WatchOptions()) -> None:
        self.runner, self.load, self.make_runner, self.emit_event, self.opts = runner, load, make_runner, on_event, opts
        self.debouncer = Debouncer()
        self.watcher: Watcher | None = None
        self.rules: list[Rule] = []
        self.files: set[str] = set()
        self._said: set[str] = set()  # notes said once
        self._skipped: dict[Rule, str] = {}  # rule -> why its files are not synced
        self._stopped = threading.Event()
        self.ready = threading.Event()  # watching has started (tests and `up --watch` wait on it)

    # ------------------------------------------------------------ the loop

    def emit(self, service: str, text: str, level: str = "info") -> None:
        self.emit_event(WatchEvent(service, text, level))

    def services(self, model: Project) -> tuple[str, ...]:
        if self.opts.services:
            return tuple(s for s in self.opts.services if s in model.services)
        return tuple(n for n, s in model.services.items() if s.develop and s.develop.watch)

    def check(self, model: Project) -> None:
        self.check_model(model, self.opts.services)

    @staticmethod
    def check_model(model: Project, services: Sequence[str]) -> None:
        """UsageError when no selected service (none: any) has rules: before anything starts."""
        names = [s for s in services if s in model.services] or list(model.services)
        if not any(model.services[n].develop and model.services[n].develop.watch for n in names):
            raise UsageError("none of the selected services has develop.watch rules",
                             hint="give a service `develop: {watch: [...]}` rules, as the compose spec's "
                                  "develop section says")

    def start(self) -> None:
        """Up (unless no_up), then watching; raises when no selected service has rules."""
        model = self.runner.stack.need_model()
        self.check(model)
        if not self.opts.no_up:
            self.runner.up(self._up_options())
        self._watch(model)
        self._initial_sync()
        self.ready.set()

    def watch(self) -> None:
        """start() then run(): the whole of `composer watch`."""
        self.start()
        self.run()

    def run(self) -> None:
        """Handle batches until stop() (or Ctrl-C in the caller's thread)."""
        try:
            while not self._stopped.is_set():
                batch = self.debouncer.get(timeout=0.5)
                if batch is None:
                    break
                if batch:
                    self.handle(batch)
        finally:
            self.close()

    def stop(self) -> None:
        self._stopped.set()
        self.debouncer.close()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None

    def _up_options(self) -> UpOptions:
        from dataclasses import replace

        return replace(self.opts.up, services=self.opts.services)

    # ------------------------------------------------------------ watches

    def _watch(self, model: Project) -> None:
        """Compile the rules and place their watches; on failure the previous ones stay."""
        rules: list[Rule] = []
        skipped: dict[Rule, str] = {}
        watcher = Watcher(self.debouncer.add, lambda: self.debouncer.add(RESCAN), every_name=self.opts.verbose)
        try:
            for rule in compile_rules(model, self.services(model)):
                if not os.path.exists(rule.path):
                    self.emit(rule.service, f"{rule.name}: {rule.shown} does not exist; this rule is skipped",
                              "error")
                    continue
                bound = bind_covering(model.services[rule.service], rule) if rule.syncs else None
                if bound:
                    skipped[rule] = bound
                    self.emit(rule.service, f"{rule.name}: not synced, {bound} is bind-mounted into the "
                                            "container and already shows the changes", "warning")
                if rule.spec.exec is not None and rule.spec.exec.privileged:
                    self.emit(rule.service, f"{rule.name}: exec runs with the container's own privileges "
                                            "(privileged: true is not supported)", "warning")
                rules.append(rule)
                if os.path.isdir(rule.path):
                    watcher.add_tree(Tree(rule.path, rule.ignore.prune))
                else:
                    watcher.add_file(rule.path)
            files = stack_files(model, self.opts.env_files)
            for f in files:
                watcher.add_file(f)
        except BaseException:
            watcher.close()
            raise
        old, self.watcher = self.watcher, watcher
        self.rules, self._skipped, self.files = rules, skipped, files
        if old is not None:
            old.close()

    @property
    def watches(self) -> int:
        return self.watcher.watches if self.watcher else 0

    # ------------------------------------------------------------ batches

    def handle(self, batch: Sequence[object]) -> None:
        rescan = any(p is RESCAN for p in batch)
        paths = sorted({p for p in batch if isinstance(p, str)})
        plan = planmod.plan(paths, self.rules, self.files, is_dir=os.path.isdir)
        if self.opts.verbose:
            for path, why in plan.notes:
                if path not in self._said:
                    self._said.add(path)
                    self.emit("", f"ignored: {self._shown(path)} {why}", "note")
        if plan.reload:
            self.reload()
            rest = [p for p in paths if p not in self.files]
            plan = planmod.plan(rest, self.rules, self.files, is_dir=os.path.isdir)
        lines: dict[str, list[str]] = {}
        for step, service, sp in plan.steps():
            try:
                getattr(self, f"_{step}")(service, sp, lines.setdefault(service, []))
            except ComposerError as err:
                self.emit(service, f"{step} failed: {err}", "error")
            except Exception as err:  # noqa: BLE001 - one failed action must not end the watch
                self.emit(service, f"{step} failed: {type(err).__name__}: {err}", "error")
        if rescan:
            self.emit("", "the kernel dropped file events (inotify queue overflow): syncing every rule again",
                      "warning")
            if self.watcher is not None:
                self.watcher.rescan()
            self._initial_sync(every=True)
        for service, parts in lines.items():
            if parts:
                self.emit(service, ", ".join(parts))

    def _shown(self, path: str) -> str:
        from composer.watch.rules import shown

        model = self.runner.model
        return shown(path, model.working_dir) if model else path

    def _rebuild(self, service: str, sp: planmod.ServicePlan, out: list[str]) -> None:
        t0 = time.monotonic()
        model = self.runner.stack.need_model()
        before = {c.spec.image_id for c in self.runner.containers([service], all=True)}
        self.runner.build([service])
        built = time.monotonic()
        dependents = _dependents(model, service)
        self.runner.up(UpOptions(services=(service, *dependents), timeout=self.opts.up.timeout))
        out.append(f"rebuilt in {ms(built - t0)}, recreated in {ms(time.monotonic() - built)}")
        if self.opts.prune and before:
            self._prune(before)

    def _prune(self, images: set[str]) -> None:
        used = {c.spec.image_id for c in self.runner.runtime.list(all=True)}
        try:
            self.runner.store.prune(in_use=lambda image: "in use" if image.id in used or image.id not in images
                                    else None)
        except ComposerError:
            pass  # pruning is a courtesy

    def _sync(self, service: str, sp: planmod.ServicePlan, out: list[str]) -> None:
        for rule, paths in sp.syncs.items():
            if rule in self._skipped:
                continue
            t0 = time.monotonic()
            counts = self._sync_rule(rule, paths)
            if counts is not None:
                out.append(f"synced {_counted(counts)} ({rule.shown} → {rule.spec.target}) in "
                           f"{ms(time.monotonic() - t0)}")

    def _sync_rule(self, rule: Rule, paths: Sequence[str]) -> Counts | None:
        containers = self.runner.containers([rule.service], all=True)
        running = [c for c in containers if c.running]
        if not running:
            self.emit(rule.service, f"{rule.name}: no running container to sync to", "error")
        total: Counts | None = None
        for c in containers:
            files = ContainerFiles.of(self.runner.runtime, c)
            mine = Counts()
            for path in paths:
                try:
                    mine.add(files.apply(path, rule.target_of(path)))
                except (OSError, ComposerError) as err:
                    self.emit(rule.service, f"{rule.name}: cannot sync {self._shown(path)} into {c.name}: {err}",
                              "error")
            if c.running and total is None:
                total = mine  # the same for every replica: said once
        return total

    def _restart(self, service: str, sp: planmod.ServicePlan, out: list[str]) -> None:
        t0 = time.monotonic()
        self.runner.restart([service], self.opts.up.timeout)
        out.append(f"restarted in {ms(time.monotonic() - t0)}")

    def _exec(self, service: str, sp: planmod.ServicePlan, out: list[str]) -> None:
        for rule in sp.execs:
            hook = rule.spec.exec
            assert hook is not None
            t0 = time.monotonic()
            running = [c for c in self.runner.containers([service]) if c.running]
            failed = 0
            for c in running:
                try:
                    code = self.runner.runtime.exec(c.id, list(hook.command), env=hook.environment,
                                                    cwd=hook.working_dir, user=hook.user, interactive=False)
                except ComposerError as err:
                    code, detail = -1, str(err)
                else:
                    detail = f"exit code {code}"
                if code != 0:
                    failed += 1
                    self.emit(service, f"{rule.name}: exec {' '.join(hook.command)} failed in {c.name}: {detail}",
                              "error")
            if running:
                out.append(f"ran {hook.command[0]} in {len(running)} container{'s' if len(running) > 1 else ''}"
                           f" in {ms(time.monotonic() - t0)}" + (f" ({failed} failed)" if failed else ""))

    # ------------------------------------------------------------ initial sync, reload

    def _initial_sync(self, every: bool = False) -> None:
        """The rules with initial_sync (every sync rule after lost events): every file the rule
        takes that differs in the container."""
        for rule in self.rules:
            if not rule.syncs or rule in self._skipped or not (every or rule.spec.initial_sync):
                continue
            t0 = time.monotonic()
            paths = [p for p in _tree_files(rule) if not self._same_in_containers(rule, p)]
            counts = self._sync_rule(rule, paths) if paths else Counts()
            if counts is not None and counts.total:
                self.emit(rule.service, f"synced {_counted(counts)} ({rule.shown} → {rule.spec.target}) at start "
                                        f"in {ms(time.monotonic() - t0)}")

    def _same_in_containers(self, rule: Rule, path: str) -> bool:
        for c in self.runner.containers([rule.service]):
            files = ContainerFiles.of(self.runner.runtime, c)
            try:
                if not _same(path, files.host_path(rule.target_of(path))):
                    return False
            except (OSError, ComposerError):
                return False
        return True

    def reload(self) -> None:
        t0 = time.monotonic()
        try:
            model = self.load()
        except ComposerError as err:
            self.emit("", f"{err} (the stack keeps running as it was until the next good save)", "error")
            return
        runner = self.make_runner(model)
        try:
            runner.up(self._up_options())
        except ComposerError as err:
            self.emit("", f"reloading failed: {err}", "error")
        self.runner = runner
        try:
            self._watch(model)
        except ComposerError as err:  # the watch limit: the old watches stay
            self.emit("", f"the reloaded rules cannot be watched: {err}", "error")
            return
        self.emit("", f"stack reloaded and converged in {ms(time.monotonic() - t0)}")


def _counted(c: Counts) -> str:
    parts = []
    n = c.files + c.links
    if n or not (c.dirs or c.deleted):
        parts.append(f"{n} file{'' if n == 1 else 's'}")
    if c.dirs:
        parts.append(f"{c.dirs} director{'y' if c.dirs == 1 else 'ies'}")
    if c.deleted:
        parts.append(f"deleted {c.deleted}")
    return ", ".join(parts)


def _dependents(model: Project, service: str) -> tuple[str, ...]:
    found, todo = set(), [service]
    while todo:
        target = todo.pop()
        for name, s in model.services.items():
            if target in s.depends_on and name not in found and name != service:
                found.add(name)
                todo.append(name)
    return tuple(sorted(found))


def _tree_files(rule: Rule) -> list[str]:
    if not os.path.isdir(rule.path):
        return [rule.path] if os.path.lexists(rule.path) else []
    out = []
    for top, dirs, files in os.walk(rule.path):
        dirs[:] = sorted(d for d in dirs if not rule.ignore.prune(os.path.join(top, d))
                         and not os.path.islink(os.path.join(top, d)))
        out.extend(os.path.join(top, d) for d in dirs if not rule.ignore.why(os.path.join(top, d), True))
        out.extend(os.path.join(top, f) for f in sorted(files) if not rule.ignore.why(os.path.join(top, f)))
    return sorted(out)


def _same(src: str, dest: str) -> bool:
    a = os.lstat(src)
    try:
        b = os.lstat(dest)
    except FileNotFoundError:
        return False
    if (a.st_mode & 0o170000) != (b.st_mode & 0o170000):
        return False
    if os.path.islink(src):
        return os.readlink(src) == os.readlink(dest)
    if os.path.isdir(src):
        return True
    if a.st_size != b.st_size:
        return False
    with open(src, "rb") as f, open(dest, "rb") as g:
        return f.read() == g.read()
