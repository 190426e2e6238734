"""composer: a daemonless, Compose-compatible multi-container orchestrator."""

__version__ = "0.1.0"
