"""A container's root filesystem, built by its PID 1 in its own mount namespace: overlay of the
image layers, mounts, /proc, /sys, /dev, pivot_root (rootfs), and what the container sees of
cgroups: its cgroup namespace and /sys/fs/cgroup (cgroupns).

May import syscalls and paths only. Imports nothing here (PID 1 imports rootfs)."""
