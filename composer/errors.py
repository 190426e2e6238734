"""The one error hierarchy. Every layer raises these; only composer.cli.main turns them into
messages and exit codes, so a user never sees a traceback for a problem they can fix."""

from __future__ import annotations


class ComposerError(Exception):
    """Base of every error a user can act on. `str(err)` is the one-line message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(ComposerError):
    """Bad command-line usage."""

    exit_code = 1  # docker compose v2's code (argparse's own 2 is mapped in cli/main.py)


class ConfigError(ComposerError):
    """A stack file (or .env / env_file) is wrong. Carries where, when known."""

    exit_code = 1  # as docker compose v2 (1.x used 15): docs/compat.md, "Exit codes"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        service: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file, self.line, self.column = file, line, column
        self.service, self.key = service, key
        where = ""
        if file:
            where = file
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message, hint=hint)


class NotFoundError(ComposerError):
    """A named thing (container, image, service, volume, network) does not exist."""


class ConflictError(ComposerError):
    """The request clashes with what exists (name in use, port taken, container running)."""


class ImageError(ComposerError):
    """An image cannot be read, stored, pulled or built; includes hostile layers."""


class ContainerError(ComposerError):
    """The runtime could not create, start or manage a container."""


class HostError(ComposerError):
    """The host lacks something composer needs (root, a kernel feature, a package)."""


class Interrupted(ComposerError):
    """The user pressed Ctrl-C."""

    exit_code = 130


class DamagedRecordError(ComposerError):
    """A record composer wrote (state.json, spec.json, a network's or the ports' table...) cannot be
    read: truncated by a crash or a full disk, or edited by hand. Readers that can rebuild what it
    held from the host say so in one warning and go on (runtime.records.damaged); the others raise it."""

    def __init__(self, path: str, reason: str, *, hint: str | None = None) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"damaged record {path} ({reason})", hint=hint)


class TemplateError(ComposerError):
    """A --format Go template that does not parse or fails on the value (docker exits 1 too)."""
