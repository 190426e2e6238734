"""`up` and `create`, as part of ProjectRunner: select the services (with their dependencies),
resolve their images, plan each service (service.plan: create, start, recreate, remove, noop per
replica), check ports and make networks and volumes before anything changes, then converge the
plans over the dependency graph in generations (parallel within one), waiting for each service's
depends_on conditions and bouncing dependents of recreated `restart: true` dependencies."""

from __future__ import annotations

from collections.abc import Sequence

from composer.config.model import Service
from composer.errors import ContainerError, NotFoundError
from composer.project.base import UpOptions
from composer.project.parallel import DependencyFailed, map_parallel, run_graph
from composer.project.readiness import DependencyError
from composer.runtime import ContainerInfo
from composer.service import service as svcmod
from composer.service.links import L_ONEOFF, L_SERVICE, peer_from_info
from composer.service.mounts import MountMaker


class UpMixin:
    """ProjectRunner's up (uses its containers, graph, _locked, _select, the container steps,
    networks, volumes and readiness)."""

    def create(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        from dataclasses import replace

        return self.up(replace(opts, no_start=True))

    def up(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        model = self._need_model()
        self.runtime.prepare()  # fork the launcher before any thread exists
        with self._locked():
            names = self._select(opts.services, opts.no_deps)
            scale = dict(opts.scale)
            self._check_services(scale)
            images = {n: self._image(model.services[n]) for n in names}
            replicas = {n: scale.get(n, model.services[n].replicas) for n in names}
            for n in names:
                svcmod.check_network_mode(model.services[n])
                svcmod.check_replicas(model.services[n], replicas[n])
            existing = self.containers(all=True, oneoff=None)
            self._orphans(existing, opts.remove_orphans, opts.timeout)
            plans = {}
            deps_only = set(names) - set(opts.services) if opts.services else set()
            for n in names:
                mine = [c for c in existing if c.label(L_SERVICE) == n and c.label(L_ONEOFF) != "True"]
                force = opts.force_recreate or (opts.always_recreate_deps and n in deps_only)
                plans[n] = svcmod.plan(model.services[n], replicas[n], images[n].id, mine, force_recreate=force,
                                       no_recreate=opts.no_recreate)
            if not opts.no_start:
                self._check_ports(plans)
            self._ensure_networks(names)
            self._ensure_volumes(names)
            self._peers = {c.id: peer_from_info(c) for c in existing if c.running}
            maker = MountMaker(self.volumes, self.name)
            failed: set[str] = set()
            recreated: set[str] = set()

            def node(n: str) -> list[ContainerInfo]:
                s = model.services[n]
                try:
                    if not opts.no_start:
                        self._wait_dependencies(s, names, failed)
                        if svcmod.network_service(s):  # its netns owner may have been recreated just now
                            with self._peer_lock:
                                plans[n] = svcmod.follow_network_target(s, plans[n], list(self._peers.values()))
                    bounce = {d for d, dep in s.depends_on.items() if dep.restart and d in recreated}
                    out = self._converge(s, plans[n], images[n], maker, opts, restart_for=bounce)
                except BaseException:
                    failed.add(n)
                    raise
                if any(a.kind in ("recreate", "create") for a in plans[n]):
                    recreated.add(n)
                return out

            # dependents are not skipped by run_graph: each decides (required: false only warns)
            outcome = run_graph(self.graph, node, nodes=names, skip_dependents=False,
                                between=lambda _gen: self._refresh_hosts(only_if_changed=True))
            self._report(outcome)
            return self.containers(names, all=True)

    def _up_dependencies(self, services: Sequence[str]) -> None:
        """For `run`: bring up what a one-off depends on."""
        self.up(UpOptions(services=tuple(services)))

    def _report(self, outcome) -> None:
        for node, dep in outcome.skipped.items():
            self.emit("container", node, "Error", node, f"not started: dependency {dep} failed")
        errors = list(outcome.errors.items())
        if not errors:
            return
        for node, err in errors:
            if isinstance(err, (DependencyError, DependencyFailed)):
                self.emit("container", node, "Error", node, str(err))
        # a dependent not started because its dependency failed repeats the cause: raise the cause
        errors = [(n, e) for n, e in errors if not isinstance(e, DependencyFailed)] or errors
        if len(errors) == 1:
            raise errors[0][1]
        first = errors[0][1]
        names = ", ".join(n for n, _ in errors)
        err = ContainerError(f"services {names} failed; first: {first}")
        err.exit_code = getattr(first, "exit_code", 1)
        raise err

    def _image(self, service: Service):
        from composer.project.builds import image_ref

        ref = image_ref(self._need_model(), service)
        try:
            return self.store.resolve(ref)
        except NotFoundError:
            hint = ("`composer build` builds it" if service.build is not None else
                    "`composer pull` fetches it; `composer image bootstrap busybox` makes a base image")
            raise NotFoundError(f"image {ref} for service {service.name} not found", hint=hint) from None

    def _orphans(self, existing: list[ContainerInfo], remove: bool, timeout: float | None) -> None:
        orphans = self._orphans_in(existing)
        if not orphans:
            return
        if not remove:
            self._warn_orphans(orphans)
            return
        map_parallel(orphans, lambda c: self._remove_container(c, timeout))

    def _converge(self, s: Service, actions: list[svcmod.Action], image, maker: MountMaker,
                  opts: UpOptions, restart_for: set[str] = frozenset()) -> list[ContainerInfo]:
        """The service's plan: removals first (highest number first), then every replica in
        parallel. restart_for: recreated dependencies with `restart: true` (running replicas bounce)."""
        removals = sorted((a for a in actions if a.kind == "remove"), key=lambda a: -a.number)
        map_parallel(removals, lambda a: self._remove_container(a.container, opts.timeout)).raise_first()
        rest = [a for a in actions if a.kind != "remove"]
        done = map_parallel(rest, lambda a: self._apply(s, a, image, maker, opts, restart_for))
        done.raise_first()
        return [done.results[a] for a in rest]

    def _apply(self, s: Service, a: svcmod.Action, image, maker: MountMaker, opts: UpOptions,
               restart_for: set[str]) -> ContainerInfo:
        if a.kind == "noop" and restart_for and not opts.no_start:
            self.emit("container", a.container.name, "Restarting", s.name,
                      f"dependency {', '.join(sorted(restart_for))} was recreated")
            self._stop(a.container, opts.timeout, quiet=True)
            return self._start(a.container)
        if a.kind == "noop":
            self.emit("container", a.container.name, "Running", s.name)
            return a.container
        if a.kind == "start":
            return a.container if opts.no_start else self._start(a.container)
        if a.kind == "create":
            info = self._create(s, a.number, image, maker)
            return info if opts.no_start else self._start(info)
        old = a.container  # recreate
        self.emit("container", old.name, "Recreating", s.name, a.reason)
        self._stop(old, opts.timeout, quiet=True)
        self.runtime.remove(old.id, force=True)
        self._forget(old.id)
        info = self._create(s, a.number, image, maker, previous=old, renew=opts.renew_anon_volumes, quiet=True)
        self.emit("container", info.name, "Recreated", s.name)
        return info if opts.no_start else self._start(info)
