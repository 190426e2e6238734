"""cgroups, v1 and v2 behind one interface: the shared models, file helpers and the abstract
driver (base), one driver per version (v1, v2), which one this host has (detect: reads
/proc/self/mountinfo and /proc/self/cgroup), docker's checks and conversions of resources (limits)
and the device policy (devices: v1's rule list, v2's BPF program).

May import spec and errors only. Imports nothing here."""
