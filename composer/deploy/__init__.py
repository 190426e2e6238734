"""Past one machine: the loaded stack on an engine that spans several. Owns the translation of the
model into what a Docker Swarm's `docker stack deploy` takes (swarmfile) and the deploy itself
(swarm: build, push, deploy through the docker CLI, wait). May import config (the model), images
(push) and errors; it is driven by cli/ and uses the project facade only as the caller hands it in."""
