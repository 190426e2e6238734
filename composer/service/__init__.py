"""One service of the model -> the ContainerSpec of each of its containers: naming, labels and
the config hash, the convergence plan (service), the per-key rules (keys), `docker run`-style
options (runspec), how containers see each other (links: /etc/hosts entries, legacy link
variables), mounts made real (mounts) and the volume store (volumes).

May import config, images (model only), runtime (spec and seccomp profiles) and the bottom layer;
never project, ui or cli. Imports nothing here."""
