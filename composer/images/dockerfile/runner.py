"""RUN: one throw-away composer container over the build's current layers; its overlay upper dir,
once the command has exited 0, is the new layer. Output is streamed line by line to a callback while
it runs. The container is removed whatever happens (Ctrl-C included)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from composer.errors import ImageError
from composer.runtime.spec import ContainerSpec


@dataclass(frozen=True)
class RunRequest:
    argv: tuple[str, ...]
    layers: tuple[str, ...]  # bottom-most first
    env: tuple[tuple[str, str], ...]
    cwd: str
    user: str
    network: str  # bridge | none | host
    label: str  # "step 3/7 RUN make", for errors


def run_step(runtime, req: RunRequest, tmp_dir: Path, lower_has: Callable[[str], bool],
             output: Callable[[str, str], None]) -> Path | None:
    """Run req; returns the path of a temp file holding the layer tar (None: nothing changed).
    A non-zero exit raises ImageError('step 3/7 RUN make: exit code 2')."""
    from composer.images.dockerfile.layertar import upper_to_tar

    cid = os.urandom(32).hex()
    spec = ContainerSpec(
        id=cid, name=f"composer-build-{cid[:12]}", image="(build)", image_id="", layers=req.layers,
        argv=req.argv, env=req.env, cwd=req.cwd or "/", user=req.user, network_mode=req.network,
        labels=(("composer.build", "true"),), stop_timeout=2.0,
    )
    runtime.create(spec)
    try:
        runtime.start(cid)
        for rec in runtime.logs(cid, follow=True):
            output(rec.stream, rec.line)
        info = runtime.wait(cid)
        if info.exit_code != 0:
            why = f"exit code {info.exit_code}" if info.exit_code is not None else (info.error or "failed")
            if info.oom_killed:
                why += " (out of memory)"
            raise ImageError(f"{req.label}: {why}")
        upper = Path(runtime.paths(cid).data) / "upper"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-layer-", dir=tmp_dir)
        try:
            with open(fd, "wb") as out:
                count = upper_to_tar(str(upper), out, lower_has)
        except BaseException:
            os.unlink(name)
            raise
        if count == 0:
            os.unlink(name)
            return None
        return Path(name)
    finally:
        try:
            runtime.remove(cid, force=True)
        except Exception:  # noqa: BLE001 - the build's own error matters more than a cleanup one
            pass
