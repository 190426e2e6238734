"""The code a lean runtime process starts with: `python -I -S -c CODE ROOT ARGS...`.

-I -S: no site, no user paths, no .pth files (~10 ms less, and nothing from the environment).
The composer and composer.runtime packages are registered as bare namespaces rooted at ROOT, so
their __init__ modules (the whole Runtime API) are never imported: only the module named runs (its
sub-package's __init__, e.g. runtime/monitor/__init__.py, is imported as usual: a docstring only)."""

from __future__ import annotations

_TEMPLATE = """\
import os, sys
{detach}r = sys.argv[1]
for n, p in (("composer", r + "/composer"), ("composer.runtime", r + "/composer/runtime")):
    m = type(sys)(n)
    m.__path__ = [p]
    sys.modules[n] = m
from composer.runtime.{module} import {func}
{func}(sys.argv[2:])
"""

# The first fork lets the spawning process reap its child at once (no zombie under a long-lived CLI).
_DETACH = "if os.fork():\n    os._exit(0)\n"


def boot_code(module: str, func: str, *, detach: bool = False) -> str:
    """Code that calls composer.runtime.<module>.<func>(argv after ROOT); module: "monitor.handoff"."""
    return _TEMPLATE.format(module=module, func=func, detach=_DETACH if detach else "")
