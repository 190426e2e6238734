"""A container as the runtime's users see it: Runtime (containers) with create and start
(lifecycle), stop, kill, pause and remove (teardown), exec (execute), the state on disk (state) and
its log read back (logread).

May import monitor (to start one), net, cgroups, security, fs, spec, syscalls and errors. One
upward edge is allowed by the contract: monitor.health runs its probe through execute. Imports
nothing here."""
