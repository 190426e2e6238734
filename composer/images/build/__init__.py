"""Dockerfile builds (`composer image build`, and `build:` in stack files through build_service_image).

    image = build(store, BuildOptions(context="app", tags=("app:latest",)), progress=print_event)

Submodules: dockerfile (syntax), words (quotes and ${VAR} substitution), stages (FROM/ARG/--target),
configsteps (config-only instructions), context (.dockerignore, safe sources), layerview (reading
layer stacks), copyplan (COPY/ADD), layertar (layer tars, whiteouts), runner (RUN in a container),
cache (per-step cache), steps and builder (the build itself)."""

from __future__ import annotations

from typing import Any, Callable

from composer.images.build.builder import BuildEvent, BuildOptions, build

__all__ = ["BuildEvent", "BuildOptions", "build", "build_service_image"]


def build_service_image(service_build: Any, ref: str, store: Any, runtime: Any = None, *, no_cache: bool = False,
                        progress: Callable[[BuildEvent], None] | None = None) -> Any:
    """Build a stack service's `build:` section (composer.config.model.Build, read by attribute: the
    images layer does not import the config layer) and tag it `ref` plus its `tags`."""
    from composer.errors import ImageError

    context = service_build.context
    if "://" in context or context.startswith("git@"):
        raise ImageError(f"build context {context}: remote contexts are not supported")
    args = tuple((k, v) for k, v in dict(service_build.args or {}).items())
    options = BuildOptions(
        context=context,
        dockerfile=service_build.dockerfile,
        dockerfile_text=service_build.dockerfile_inline,
        tags=(ref, *tuple(service_build.tags or ())),
        build_args=args,
        target=service_build.target,
        labels=tuple(dict(service_build.labels or {}).items()),
        no_cache=no_cache or bool(getattr(service_build, "no_cache", False)),
        network=service_build.network or "bridge",
    )
    return build(store, options, runtime=runtime, progress=progress)
