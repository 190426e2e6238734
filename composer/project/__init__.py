"""The orchestrator: a whole stack (services, their containers, networks and volumes) brought
up, down, run once and watched. The facade is project.ProjectRunner (option and event types in
base); up, down and oneoff are its verbs, functions over the collaborators that parts bundles
(stack: the context; hostsbook: peers and hosts files behind one lock; containers, networks,
volumes, readiness); images prepares (builds, pulls) and resolves the images up needs; attach
decides what an attached up follows; parallel is the dependency graph and its scheduler; events,
recovery and ops serve single verbs.

May import service, config, images, runtime and the bottom layer (errors, units, paths); never cli
or ui: it reports through events and never prints. Imports nothing here (`ps` and `ls` load only
the module they use)."""
