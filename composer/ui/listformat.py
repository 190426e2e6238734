"""`--format` for the listing verbs (ps, container ls, stats), as docker reads it: `table` (the
verb's own table), `json` (one object per line), `table TEMPLATE` (a header row, then the template
per row, tab-separated cells aligned) or a bare Go template per row. Rows are dicts of the keys
docker's templates know for that verb (ui.gotemplate evaluates them)."""

from __future__ import annotations

import json
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence


def custom(fmt: str | None) -> bool:
    """True when fmt asks for something other than the verb's own table."""
    return bool(fmt) and fmt != "table"


def render(rows: Sequence[dict], fmt: str, titles: dict[str, str]) -> str:
    """rows under a custom fmt; titles: the header text of each key for `table TEMPLATE`."""
    if fmt == "json":
        return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows)
    from composer.ui.gotemplate import Template

    table = fmt.startswith("table ")
    body = (fmt[len("table "):] if table else fmt).replace("\\t", "\t").replace("\\n", "\n")
    template = Template(body)  # a parse error before any output
    lines = [template.execute(r) for r in rows]
    if not table:
        return "".join(line + "\n" for line in lines)
    keys = set(titles) | {k for r in rows for k in r}
    header = template.execute({k: titles.get(k, k.upper()) for k in keys})
    return aligned([header, *lines])


def aligned(lines: Sequence[str]) -> str:
    """Tab-separated cells padded as docker's tabwriter pads them (three spaces between columns)."""
    split = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in split:
        for i, c in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, 0), len(c))
    return "".join("".join(c.ljust(widths[i] + 3) if i < len(cells) - 1 else c
                           for i, c in enumerate(cells)).rstrip() + "\n" for cells in split)


def validate(fmt: str | None) -> None:
    """Parse a custom fmt now: a bad template fails before anything runs or prints."""
    if custom(fmt) and fmt != "json":
        from composer.ui.gotemplate import Template

        Template(fmt[len("table "):] if fmt.startswith("table ") else fmt)


def container_row(info, no_trunc: bool = False) -> dict:
    """A container as `docker ps --format` sees it (its keys, its spellings)."""
    from composer.ui.tables import ago, command_text, ports_text, status_text

    return {
        "Command": command_text(info.spec.argv, not no_trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(info.created_at))
        if info.created_at else "",
        "ID": info.id if no_trunc else info.id[:12],
        "Image": info.spec.image,
        "Labels": ",".join(f"{k}={v}" for k, v in info.spec.labels),
        "LocalVolumes": "0",
        "Mounts": ",".join(m.source if m.type == "bind" else m.target for m in info.spec.mounts),
        "Names": info.name,
        "Networks": ",".join(e.network for e in info.endpoints) or info.spec.network_mode,
        "Ports": ports_text(info),
        "RunningFor": ago(info.created_at).removesuffix(" ago") or "",
        "Size": "0B",
        "State": info.status,
        "Status": status_text(info),
    }


CONTAINER_TITLES = {"Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID", "Image": "IMAGE",
                    "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Names": "NAMES",
                    "Networks": "NETWORKS", "Ports": "PORTS", "RunningFor": "CREATED", "Size": "SIZE",
                    "State": "STATE", "Status": "STATUS"}

PS_TITLES = {"Command": "COMMAND", "CreatedAt": "CREATED AT", "ExitCode": "EXIT CODE", "Health": "HEALTH",
             "ID": "CONTAINER ID", "Image": "IMAGE", "Labels": "LABELS", "Name": "NAME", "Names": "NAMES",
             "Project": "PROJECT", "Publishers": "PORTS", "RunningFor": "CREATED", "Service": "SERVICE",
             "State": "STATE", "Status": "STATUS", "RestartCount": "RESTARTS"}
