"""Dockerfile builds (`composer image build`, and `build:` in stack files through
builder.build_service_image). Owns the Dockerfile syntax, the build context, the per-step cache and
RUN steps; may import images (store, model), runtime (RUN runs a container) and errors, never config
(a service's `build:` is read by attribute) or anything above.

    from composer.images.dockerfile.builder import BuildOptions, build
    image = build(store, BuildOptions(context="app", tags=("app:latest",)), progress=print_event)

Modules: dockerfile (syntax), words (quotes and ${VAR} substitution), stages (FROM/ARG/--target),
configsteps (config-only instructions), context (.dockerignore, safe sources), layerview (reading
layer stacks), copyplan (COPY/ADD), layertar (layer tars, whiteouts), runner (RUN in a container),
cache (per-step cache), steps and builder (the build itself)."""
