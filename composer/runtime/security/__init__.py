"""What a container may do: capabilities (caps), seccomp profiles in docker's JSON format
(seccomp_profile), compiled to classic BPF (seccomp_bpf, with syscall numbers from seccomp_tables)
and loaded before exec (seccomp, which caches built programs).

May import syscalls only. Imports nothing here (a container's PID 1 imports caps and seccomp)."""
