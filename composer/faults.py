"""TEST-ONLY fault injection: `COMPOSER_FAULT=<step>:<action>` makes the process that reaches the named
step die or freeze there, so every crash window of create, start, up and down is a deterministic test
(tests/faults/). Unset, `point()` costs one dict lookup (os.environ.get) and does nothing.

Actions: `kill` (SIGKILL to itself: nothing unwinds, no finally runs, as a kill -9 from outside),
`stop` (SIGSTOP to itself: a test looks at the frozen state, then kills it), `raise` (RuntimeError:
for the lean monitor, whose top-level handler records it, runtime.monitor.failure).

This module owns the list of steps: `point()` refuses a name not in STEPS, so a test cannot wait for a
step that no code reaches. Lean: os and signal only (the monitor imports it)."""

from __future__ import annotations

import os

ENV = "COMPOSER_FAULT"

# step -> where it is (the crash window it opens)
STEPS = {
    "create.dir": "runtime create: the container's (staging) dir made, no spec.json yet",
    "create.spec": "runtime create: spec.json written in the staging dir, not yet renamed into place",
    "create.placed": "runtime create: the container dir in place, no state.json yet",
    "start.monitor": "runtime start: the monitor spawned, no cgroup yet",
    "start.cgroup": "runtime start: the cgroup made, PID 1 not in it, nothing recorded",
    "start.network": "runtime start: veths plumbed and ports published, state.json not written",
    "start.state": "runtime start: state.json written, PID 1 not told to go",
    "start.done": "runtime start: PID 1 runs",
    "up.networks": "up: networks made, no volume or container yet",
    "up.volumes": "up: volumes made, no container yet",
    "up.mounts": "up: a container's mount sources made, not created",
    "up.created": "up: a container created, not started",
    "down.stopped": "down: a container stopped, not removed",
    "down.removed": "down: the containers removed, networks still there",
    "down.networks": "down: the networks removed, volumes still there",
    "monitor.finish": "monitor: recording its container's exit",
}


def point(step: str) -> None:
    """Die, freeze or raise here when $COMPOSER_FAULT names this step."""
    spec = os.environ.get(ENV)
    if spec is None:
        return
    name, _, action = spec.partition(":")
    if name != step:
        if step not in STEPS:
            raise KeyError(f"unknown fault step {step!r}")
        return
    import signal

    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    else:
        raise RuntimeError(f"injected failure at {step} (${ENV}, test-only)")
