"""Which stack files a directory means: compose's names plus Fig's, searched upward, with the
matching override file. Outside the config package and with nothing but `os`, so the CLI's fast
project-name path (`composer/cli/fastname.py`) uses the same rules without importing the loader."""

from __future__ import annotations

import os

CANDIDATES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml", "fig.yml", "fig.yaml")
OVERRIDES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
             "docker-compose.override.yml", "fig.override.yml", "fig.override.yaml")


def find_stack_files(start: str) -> list[str] | None:
    """The first directory upward from `start` holding a stack file: [file] or [file, override];
    None when there is none. Cheap to import (the CLI's fast name path uses it)."""
    d = start
    while True:
        for name in CANDIDATES:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                stem, ext = os.path.splitext(name)
                for over in (f"{stem}.override{ext}", *OVERRIDES):
                    op = os.path.join(d, over)
                    if os.path.isfile(op):
                        return [path, op]
                return [path]
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent
