"""`composer config`: validate the stack file(s) and print the canonical model, as `docker compose
config` does, or one facet of it (--services, --volumes, --hash, ...)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

import yaml

from composer.cli.projectopts import load_options_from_args, print_warnings
from composer.errors import ConfigError, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="validate and show the stack file in canonical form",
                       description="Parse, resolve and render the stack file in canonical format.",
                       allow_abbrev=False)
    p.add_argument("service_names", nargs="*", metavar="SERVICE", help="only these services")
    p.add_argument("--format", choices=("yaml", "json"), default=None, help="yaml (default) or json")
    p.add_argument("--services", action="store_true", help="print the service names, one per line")
    p.add_argument("--volumes", action="store_true", help="print the volume names, one per line")
    p.add_argument("--networks", action="store_true", help="print the network names, one per line")
    p.add_argument("--images", action="store_true", help="print the image names, one per line")
    p.add_argument("--profiles", dest="list_profiles", action="store_true", help="print the profile names")
    p.add_argument("--hash", metavar="SERVICE", help="print the config hash of SERVICE (or '*': all)")
    p.add_argument("-q", "--quiet", action="store_true", help="only validate, print nothing")
    p.add_argument("--no-interpolate", action="store_true", help="do not interpolate variables")
    p.add_argument("--no-normalize", action="store_true", help="do not normalise the model")
    p.add_argument("--environment", action="store_true", help="print the interpolation environment and sources")
    p.add_argument("--variables", action="store_true", help="print the variables the files use, with defaults")
    p.add_argument("--no-path-resolution", action="store_true", help="keep relative paths as written")
    p.add_argument("--resolve-image-digests", action="store_true", help="pin image tags to their digests")
    p.add_argument("--check-support", action="store_true",
                   help="list every key of the stack that composer models but does not honour here, one a line")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from composer.config import config_hash, project_dict
    from composer.config.loader import build_project, load_raw

    if args.variables:
        return _emit(args, _variables(load_raw(load_options_from_args(args, interpolate=False)), args.format))
    args.format = args.format or "yaml"
    opts = load_options_from_args(args, services=args.service_names, interpolate=not args.no_interpolate,
                                  resolve_paths=not args.no_path_resolution)
    raw = load_raw(opts)
    print_warnings(raw.warnings)
    project = None
    try:
        project = build_project(raw, opts)
    except ConfigError:
        if not (args.no_interpolate or args.no_normalize):
            raise
    if args.no_normalize or project is None:
        doc = _raw_doc(raw)
        if project is None and not (args.services or args.volumes or args.networks or args.images
                                    or args.list_profiles or args.hash or args.environment
                                    or args.check_support):
            return _emit(args, _render(doc, args.format))
    if args.quiet:
        return 0
    assert project is not None
    services = project.services
    if args.service_names:
        services = {n: s for n, s in services.items() if n in args.service_names}
    if args.services:
        return _emit(args, _lines(services))
    if args.volumes:
        return _emit(args, _lines(project.volumes))
    if args.networks:
        return _emit(args, _lines(project.networks))
    if args.images:
        return _emit(args, _lines(s.image or f"{project.name}-{n}" for n, s in services.items()))
    if args.list_profiles:
        return _emit(args, _lines(project.all_profiles()))
    if args.check_support:
        return _emit(args, _lines(support_lines(project, services)))
    if args.environment:
        width = max((len(k) for k in project.environment), default=0)
        return _emit(args, "".join(f"{k:<{width}}  {project.env_sources.get(k, '')}\n"
                                   for k in project.environment))
    if args.hash:
        names = list(services) if args.hash == "*" else [n.strip() for n in args.hash.split(",")]
        for n in names:
            if n not in project.services:
                raise UsageError(f"no such service: {n}")
        return _emit(args, "".join(f"{n} {config_hash(project.services[n])}\n" for n in names))
    if args.no_normalize:
        return _emit(args, _render(doc, args.format))
    if args.resolve_image_digests:
        from composer.project.images import pin_digests  # the images layer knows registries

        project = pin_digests(project)
    d = project_dict(project)
    if args.service_names:
        d["services"] = {n: v for n, v in d["services"].items() if n in args.service_names}
    if not args.no_interpolate:
        from composer.config.serialize import escape_dollars

        d = escape_dollars(d)
    return _emit(args, _render(d, args.format))


def _variables(raw, fmt: str | None) -> str:
    """`--variables`: every variable of the (uninterpolated) files, first use first, listed by name."""
    from composer.config.interpolate import variables

    found: dict[str, Any] = {}

    def walk(v: Any) -> None:
        if isinstance(v, str):
            for var in variables(v):
                found.setdefault(var.name, var)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(raw.data)
    rows = [found[k] for k in sorted(found)]
    if fmt:
        return _render({v.name: {"Name": v.name, "DefaultValue": v.default, "PresenceValue": v.alternate,
                                 "Required": v.required} for v in rows}, fmt)
    table = [("NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE")]
    table += [(v.name, "true" if v.required else "false", v.default, v.alternate) for v in rows]
    return "".join("".join(f"{c:<20}" for c in r[:-1]) + r[-1] + "\n" for r in table)


def support_lines(project, services) -> list[str]:
    """What `up` would warn about, for every service (the same texts: service/keys.py)."""
    from composer.service.keys import warnings_for

    out = [w for s in services.values() for w in warnings_for(s)]
    out += [f"models: key {k!r} is not supported here (no model runner), ignored" for k in project.models]
    return out


def _raw_doc(raw) -> dict:
    doc = {"name": raw.name, **{k: v for k, v in raw.data.items() if k not in ("name", "version")}}
    if isinstance(doc.get("services"), dict):
        doc["services"] = dict(sorted(doc["services"].items()))
    return doc


def _lines(items) -> str:
    return "".join(f"{x}\n" for x in items)


def _render(doc: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    return dump_yaml(doc)


def _emit(args: argparse.Namespace, text: str) -> int:
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as err:
            raise UsageError(f"cannot write {args.output}: {err.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0


# YAML output shaped like `docker compose config`: block style, sequences indented under their key,
# keys sorted below the top level (name, services, networks, volumes, ...). A small emitter of our
# own: PyYAML's pure-Python emitter took 700 ms on a 200-service project, and its C emitter cannot
# indent sequences the way compose does.

_RESOLVER = yaml.resolver.Resolver()
_PLAIN_RE = re.compile(r"[A-Za-z0-9_./+=-][A-Za-z0-9_./+@=:,-]*")


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN_RE.fullmatch(s) and s != "-" and not s.endswith(":") and _is_plain_str(s):
        return s
    return json.dumps(s, ensure_ascii=False)


def _is_plain_str(s: str) -> bool:
    """True when YAML would read `s` back as the same string (not a number, bool, null, ...)."""
    from composer.config.yamlsrc import resolve_plain

    # plain only when neither YAML 1.1 (other tools) nor YAML 1.2 as composer and compose read it (`1e3`,
    # `0o17` are numbers there) would make it anything but this string
    return _RESOLVER.resolve(yaml.ScalarNode, s, (True, False)) == "tag:yaml.org,2002:str" \
        and s.lower() not in ("y", "n", "yes", "no", "on", "off") and resolve_plain(s) == s


def _emit_yaml(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for k in value:
            v = value[k]
            key = _scalar(k)
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:")
                _emit_yaml(v, indent + 2, out)
            elif isinstance(v, list) and v:
                out.append(f"{pad}{key}:")
                _emit_yaml(v, indent + 2, out)
            else:
                out.append(f"{pad}{key}: {_inline(v)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub: list[str] = []
                _emit_yaml(item, indent + 2, sub)
                out.append(f"{pad}- {sub[0][indent + 2:]}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_inline(item)}")


def _inline(v: Any) -> str:
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _scalar(v)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def dump_yaml(doc: dict) -> str:
    out: list[str] = []
    _emit_yaml({k: _sorted(v) for k, v in doc.items()}, 0, out)
    return "\n".join(out) + "\n"
