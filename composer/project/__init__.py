"""The orchestrator: a whole stack (services, their containers, networks and volumes) brought
up, down, run once and watched. The facade is project.ProjectRunner (with its option and event
types); up, down, containers, networks, volumes, oneoff, readiness, events, recovery and ops are
its parts; parallel is the dependency graph and its scheduler; builds prepares the images up needs.

May import service, config, images, runtime and the bottom layer (errors, units, paths); never cli
or ui: it reports through events and never prints. Imports nothing here (`ps` and `ls` load only
the module they use)."""
