"""What keeps a container running after the CLI has left: the launcher (one lean process per
state dir, client and server), the monitor forked from it (monitor), a run's start (launch) and
PID 1's own set-up before exec (child), the monitor's state writes (facts), log writing (logpump),
healthchecks (health), terminals (tty), the hand-off to the compiled idle half (handoff, pump/) and
the boot code of these lean processes (bootcode).

These modules run in `python -I -S` processes with stub `composer` and `composer.runtime`
packages (bootcode): they import os, ctypes and C halves only, plus net.rtnl, fs, security and
syscalls; cgroups and container.execute only lazily. Nothing here may import container (except
that lazy exec of a probe), and this __init__ must stay a docstring: every monitor imports it."""
