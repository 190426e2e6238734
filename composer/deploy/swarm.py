"""`composer deploy --swarm` / `composer undeploy`: the stack on a Docker Swarm through the docker CLI's
`docker stack deploy`, after composer has done what the swarm's loader cannot (swarmfile.py), built
the images, pushed them to a registry every node can reach and pinned them by digest.

The docker CLI is the one way in, as a user would type it: it speaks whatever API version the engine
has, honours DOCKER_HOST/contexts, and its `stack deploy` is the swarm's own converter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml

from composer.config import model as m
from composer.deploy.swarmfile import SwarmOptions, Unmapped, stack_name, swarm_document
from composer.errors import ComposerError, ConfigError, UsageError


class SwarmError(ComposerError):
    """The engine refused or did not converge."""


@dataclass(frozen=True)
class DeployOptions:
    """What `composer deploy --swarm` was asked."""

    registry: str | None = None      # host[:port][/path]: where built (and local-only) images go
    publish_mode: str | None = None  # host | ingress
    endpoint_mode: str | None = None  # vip | dnsrr
    strict: bool = False             # an unmapped key is an error, not a warning
    prune: bool = False              # remove services no longer in the file
    detach: bool = False             # do not wait for the services to converge
    timeout: float = 180.0           # seconds to wait for convergence
    resolve_image: str | None = None  # always | changed | never (docker's --resolve-image)
    output: str | None = None        # also keep the stack file given to the swarm here


@dataclass(frozen=True)
class DeployEvent:
    """One step of a deploy, for the CLI to render."""

    kind: str     # warning | image | deploy | service | done
    name: str
    detail: str = ""


Emit = Callable[[DeployEvent], None]


def docker_cli() -> str:
    """The docker CLI: $COMPOSER_DOCKER, else `docker` on PATH."""
    return os.environ.get("COMPOSER_DOCKER") or shutil.which("docker") or "docker"


def _docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run([docker_cli(), *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SwarmError("the docker CLI is not installed (or set COMPOSER_DOCKER to its path)") from None
    except subprocess.TimeoutExpired:
        raise SwarmError(f"docker {args[0]} {args[1] if len(args) > 1 else ''} did not answer within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        err = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise SwarmError(f"docker {' '.join(args[:2])}: {err[-1] if err else f'exit {proc.returncode}'}")
    return proc


def check_manager() -> None:
    """The engine the CLI talks to is a swarm manager, or one message saying how to make it one."""
    proc = _docker("info", "--format", "{{json .Swarm}}", check=False, timeout=30)
    if proc.returncode != 0:
        raise SwarmError("no docker engine answers (start dockerd, or set DOCKER_HOST)")
    swarm = json.loads(proc.stdout or "{}")
    if swarm.get("LocalNodeState") != "active":
        raise SwarmError("this docker engine is not part of a swarm: run `docker swarm init` "
                         "(or point DOCKER_HOST at a manager)")
    if not swarm.get("ControlAvailable"):
        raise SwarmError("this docker engine is a swarm worker: deploy from a manager (DOCKER_HOST)")


def plan(model: m.Project, opts: DeployOptions, images: dict[str, str] | None = None) -> tuple[dict, list[Unmapped]]:
    """The stack file and what the swarm will not honour, refused under --strict before anything runs."""
    doc, notes = swarm_document(model, SwarmOptions(publish_mode=opts.publish_mode,
                                                    endpoint_mode=opts.endpoint_mode, images=images))
    built = [n for n, s in sorted(model.services.items()) if s.build is not None]
    if built and not opts.registry:
        raise UsageError(f"service {built[0]} is built here: swarm nodes pull images from a registry, "
                         "so pass --registry HOST[:PORT] to push it there")
    if opts.strict and notes:
        raise ConfigError("; ".join(map(str, notes)) + " (--strict)")
    return doc, notes


def deploy(project, opts: DeployOptions, emit: Emit) -> str:
    """Deploy the loaded project (a composer.project.Project facade) as a swarm stack; returns its name."""
    model: m.Project = project.model
    doc, notes = plan(model, opts)
    check_manager()
    for note in notes:
        emit(DeployEvent("warning", note.service or model.name, str(note)))
    images = _images(project, model, opts, emit)
    doc, _ = plan(model, opts, images)
    name = stack_name(model.name)
    staging = Path(tempfile.mkdtemp(prefix=f"composer-deploy-{name}-"))
    try:
        os.chmod(staging, 0o700)  # secrets from the environment are written here for the CLI to read
        _materialise(doc, staging, model.environment)
        path = staging / "stack.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        if opts.output:
            out = Path(opts.output)
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_text(path.read_text())
            tmp.replace(out)
        args = ["stack", "deploy", "-c", str(path)]
        if opts.prune:
            args.append("--prune")
        if opts.resolve_image:
            args += ["--resolve-image", opts.resolve_image]
        emit(DeployEvent("deploy", name, f"{len(doc['services'])} services"))
        _docker(*args, name, timeout=300)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not opts.detach:
        _converge(name, doc, opts.timeout, emit)
    emit(DeployEvent("done", name))
    return name


def _images(project, model: m.Project, opts: DeployOptions, emit: Emit) -> dict[str, str]:
    """service -> pinned reference, for what a node could not pull otherwise: images built here, and
    (with --registry) images only composer's store holds."""
    if not opts.registry:
        return {}
    from composer.images.push import push_to_registry

    built = [n for n, s in sorted(model.services.items()) if s.build is not None]
    if built:
        emit(DeployEvent("image", ", ".join(built), "building"))
        project.build(built)
    pinned: dict[str, str] = {}
    done: dict[str, str] = {}
    for name, svc in sorted(model.services.items()):
        ref = svc.image or f"{model.name}-{name}"
        if svc.build is None and not project.store.exists(ref):
            continue  # a public image: the swarm resolves and pins it itself
        if ref not in done:
            done[ref] = push_to_registry(project.store, ref, opts.registry)
            emit(DeployEvent("image", ref, f"pushed as {done[ref]}"))
        pinned[name] = done[ref]
    return pinned


def _materialise(doc: dict, staging: Path, environ) -> None:
    """Secrets and configs from the environment or inline content: the 3.9 format reads files."""
    for kind in ("configs", "secrets"):
        for key, obj in (doc.get(kind) or {}).items():
            for source in ("environment", "content"):
                value = obj.pop(f"x-composer-{source}", None)
                if value is None:
                    continue
                text = environ.get(value, "") if source == "environment" else value
                path = staging / f"{kind}-{key}"
                path.write_text(text)
                obj["file"] = str(path)


def _converge(name: str, doc: dict, timeout: float, emit: Emit) -> None:
    """Wait until every service runs all its replicas (docker stack services' "n/n")."""
    deadline = time.monotonic() + timeout
    wanted = {f"{name}_{svc}" for svc in doc["services"]}
    seen: set[str] = set()
    state: dict[str, str] = {}
    while True:
        proc = _docker("stack", "services", name, "--format", "{{.Name}} {{.Replicas}}", check=False)
        state = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
        for svc, replicas in state.items():
            running, _, desired = replicas.partition("/")
            desired = desired.split()[0] if desired else ""
            if svc in wanted and running == desired and svc not in seen:
                seen.add(svc)
                emit(DeployEvent("service", svc, f"{replicas} running"))
        if wanted <= seen:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    late = sorted(wanted - seen)
    why = _task_error(late[0]) if late else ""
    raise SwarmError(f"stack {name}: {', '.join(late)} did not converge within {timeout:.0f} s"
                     + (f" ({why})" if why else "") + f"; see `docker service ps {late[0]}`")


def _task_error(service: str) -> str:
    proc = _docker("service", "ps", service, "--no-trunc", "--format", "{{.Error}}", check=False)
    return next((line for line in proc.stdout.splitlines() if line.strip()), "")


def undeploy(model_name: str, emit: Emit, *, detach: bool = False, timeout: float = 120.0) -> None:
    """`docker stack rm`, then wait until its networks are gone (the CLI returns before they are)."""
    name = stack_name(model_name)
    check_manager()
    _docker("stack", "rm", name)
    emit(DeployEvent("deploy", name, "removing"))
    deadline = time.monotonic() + timeout
    while not detach:
        left = _docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={name}",
                       check=False).stdout.split()
        tasks = _docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={name}",
                        check=False).stdout.split()
        if not left and not tasks:
            break
        if time.monotonic() > deadline:
            raise SwarmError(f"stack {name}: still removing after {timeout:.0f} s")
        time.sleep(0.5)
    emit(DeployEvent("done", name, "removed"))


def services_of(name: str) -> Sequence[str]:
    """The stack's services as the swarm lists them."""
    proc = _docker("stack", "services", stack_name(name), "--format", "{{.Name}}", check=False)
    return proc.stdout.split()


