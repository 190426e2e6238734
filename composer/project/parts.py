"""The runner's collaborators, made once per runner and handed to the verbs (up, down, oneoff)
together: a frozen bundle, so a verb names what it uses (`parts.steps.start`, `parts.hosts.peers`)
and cannot swap a collaborator for another. Who owns what:

- stack.Stack: model, name, runtime, stores, graph; queries. Its Reporter owns the event lock and
  the warn-once set; its ProjectLock owns the per-project fcntl lock and its depth.
- hostsbook.HostsBook: peers, the dirty flag and the hosts entries written, behind one lock.
- containers.ContainerSteps: create, start, stop, remove one container; refreshes hosts files
  through the HostsBook. No state.
- networks.Networks, volumes.Volumes, readiness.Readiness: no state beyond the Stack."""

from __future__ import annotations

from dataclasses import dataclass

from composer.project.containers import ContainerSteps
from composer.project.hostsbook import HostsBook
from composer.project.networks import Networks
from composer.project.readiness import Readiness
from composer.project.stack import Stack
from composer.project.volumes import Volumes


@dataclass(frozen=True)
class Parts:
    """The collaborators of one runner, bundled so a verb names each one it uses."""

    stack: Stack
    hosts: HostsBook
    steps: ContainerSteps
    networks: Networks
    volumes: Volumes
    readiness: Readiness

    @classmethod
    def assemble(cls, stack: Stack) -> "Parts":
        hosts: HostsBook = HostsBook()
        volumes = Volumes(stack)
        return cls(stack, hosts, ContainerSteps(stack, hosts, volumes), Networks(stack), volumes, Readiness(stack))
