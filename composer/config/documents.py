"""Reading stack documents: parse, detect Fig's format 1, interpolate, and resolve `include` and
`extends` (which may read further files). The result is one plain document per `-f` file, ready to
merge, with the marks of every value."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from composer.config import fileio
from composer.config import merge as merging
from composer.config.interpolate import interpolate_tree, located_error
from composer.config.yamlsrc import Marks, Override, Reset, parse
from composer.errors import ConfigError

MAX_FILE_SIZE = 2 << 20  # a 2 MiB stack file is already absurd: parsing one costs seconds (~3 s/MiB) and 100s of MB
_TOP_LEVEL = frozenset({"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"})


@dataclass
class Doc:
    """One parsed stack file: its data, the source marks of every node, where its paths resolve."""

    path: str  # absolute, or "-"
    data: dict
    marks: Marks
    base_dir: str  # directory relative paths in this file resolve against


class Env(Mapping):
    """The interpolation environment: `first` wins over `then` (an included project's .env adds only what
    the including project does not set), and `lazy` names are computed on first use
    (COMPOSE_PROJECT_NAME: the project name needs the files' `name:`, which is read with this environment)."""

    def __init__(self, first: Mapping, then: Mapping | None = None, lazy: dict | None = None) -> None:
        self.first, self.then, self.lazy = first, then or {}, dict(lazy or {})

    def __getitem__(self, key: str) -> str:
        if key in self.first:
            return self.first[key]
        if key in self.then:
            return self.then[key]
        make = self.lazy.pop(key, None)
        if make is not None:
            value = make()
            if value is not None:
                self.then = {**self.then, key: value}
                return value
        raise KeyError(key)

    def __iter__(self):
        return iter({**self.then, **self.first})

    def __len__(self) -> int:
        return len({**self.then, **self.first})


@dataclass
class Reader:
    """Reads stack files once each (include and extends may name one twice), interpolating with `environ`."""

    environ: Mapping
    interpolate: bool = True
    warnings: list = field(default_factory=list)
    stdin: Any = None
    top_files: frozenset = frozenset()  # the -f files: one of them empty is an error, as compose says
    _cache: dict = field(default_factory=dict)

    def for_include(self, env_files: list[str]) -> "Reader":
        """The reader of an included project: its own env files (default: its `.env`) under ours."""
        from composer.config.envfile import read_env_file

        values: dict = {}
        for f in env_files:
            values.update({k: v for k, v in read_env_file(f, self.environ.get).items() if v is not None})
        if not values:
            return self
        return Reader(Env(self.environ, values), self.interpolate, self.warnings, self.stdin)

    def read(self, path: str, base_dir: str | None = None) -> Doc:
        """Parse + interpolate one file (cached: extends may read the same file many times)."""
        if path in self._cache:
            return self._cache[path]
        if path == "-":
            text = (self.stdin or sys.stdin).read(MAX_FILE_SIZE + 1)
            label = "-"
        else:
            try:
                text = fileio.read_text(path, MAX_FILE_SIZE)
            except FileNotFoundError:
                raise ConfigError(f"stack file {path} not found") from None
            except (OSError, UnicodeDecodeError) as err:
                raise ConfigError(f"cannot read {path}: {err}") from None
            label = _display(path)
        if len(text) > MAX_FILE_SIZE:
            raise ConfigError(f"the file is larger than {MAX_FILE_SIZE >> 20} MiB, more than a stack file needs",
                              file=label)
        if "\0" in text:
            line = text.count("\n", 0, text.index("\0")) + 1
            raise ConfigError("the file contains a NUL byte: it is not a text file", file=label, line=line)
        if len(text) > _EARLY_CHECK_SIZE:
            _refuse_unknown_top_keys(text, label)
        data, marks = parse(text, label)
        if data is None:
            if path in self.top_files:
                raise ConfigError("empty compose file", file=label)
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("the top level of a stack file must be a mapping", file=label, line=1, column=1)
        if _is_format_1(data):
            data, marks = _from_format_1(data, marks)
        if self.interpolate:
            data = interpolate_tree(data, self.environ, marks, self.warnings)
        doc = Doc(path, data, marks, base_dir or (os.getcwd() if path == "-" else os.path.dirname(path)))
        self._cache[path] = doc
        return doc


_EARLY_CHECK_SIZE = 256 << 10
_TOP_KEY = re.compile(r"^([A-Za-z0-9_][^:#\s]*)[ \t]*:(?:[ \t]|$)", re.MULTILINE)


def _refuse_unknown_top_keys(text: str, label: str) -> None:
    """A large file's unknown top-level key refused by a plain look at its lines, before the
    parse (seconds and hundreds of MB for a few MB of YAML) that validation would follow. Only block
    style documents with `services:` or `version:` (not Fig's format 1, where services are the keys)."""
    keys = list(_TOP_KEY.finditer(text))
    if not any(m.group(1) in ("services", "version") for m in keys) or text.lstrip().startswith(("{", "[")):
        return
    for m in keys:
        key = m.group(1)
        if key not in _TOP_LEVEL and not key.startswith("x-"):
            line = text.count("\n", 0, m.start()) + 1
            raise ConfigError(f"unknown top-level key {key!r} (allowed: {', '.join(sorted(_TOP_LEVEL))}, x-*)",
                              file=label, line=line, column=1)


def _display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("../..") else path
    except ValueError:
        return path


def _is_format_1(data: dict) -> bool:
    """Fig / compose file format 1: services at the top level, no `services:` or `version:`."""
    keys = [k for k in data if not k.startswith("x-")]
    # Fig required image or build (or extends) in every service: that tells a format-1 service from a
    # misspelt top-level key such as `servics:`.
    return bool(keys) and not (set(keys) & _TOP_LEVEL) and all(
        isinstance(data[k], dict) and ({"image", "build", "extends"} & set(data[k])) for k in keys)


def _from_format_1(data: dict, marks: Marks) -> tuple[dict, Marks]:
    services = {}
    for name, svc in data.items():
        if name.startswith("x-"):
            continue
        svc = dict(svc)
        if "net" in svc and "network_mode" not in svc:
            svc["network_mode"] = str(svc.pop("net"))
        services[name] = svc
    new_marks = {("services",) + p if p and not str(p[0]).startswith("x-") else p: mk for p, mk in marks.items()}
    return {"services": services}, new_marks


def resolve_extends(doc: Doc, reader: Reader, all_marks: Marks) -> dict:
    """Return doc.data with every service's `extends` resolved (recursively, across files)."""
    services = doc.data.get("services")
    if not isinstance(services, dict):
        return doc.data
    out = dict(doc.data)
    out["services"] = {name: _extended(doc, name, reader, all_marks, ()) if isinstance(svc, dict) else svc
                       for name, svc in services.items()}
    return out


def _extended(doc: Doc, name: str, reader: Reader, all_marks: Marks, stack: tuple) -> dict:
    svc = doc.data["services"][name]
    ext = svc.get("extends") if isinstance(svc, dict) else None
    if ext is None:
        return svc
    here = (doc.path, name)
    path = ("services", name, "extends")
    if here in stack:
        chain = " -> ".join(n for _, n in stack + (here,))
        raise located_error(f"extends cycle: {chain}", doc.marks, path)
    if isinstance(ext, str):
        ext = {"service": ext}
    if not isinstance(ext, dict) or not isinstance(ext.get("service"), str):
        raise located_error("extends needs a service name", doc.marks, path)
    base_doc = doc
    if ext.get("file"):
        file = os.path.normpath(os.path.join(doc.base_dir, str(ext["file"])))
        if not fileio.isfile(file):
            raise located_error(f"extends file {ext['file']} not found", doc.marks, path + ("file",))
        base_doc = reader.read(file)
    base_services = base_doc.data.get("services") or {}
    target = ext["service"]
    if not isinstance(base_services, dict) or target not in base_services:
        raise located_error(f"extends unknown service {target!r}", doc.marks, path + ("service",),
                            hint=_suggest(target, base_services))
    base = _extended(base_doc, target, reader, all_marks, stack + (here,))
    if base is None:  # `base:` with nothing under it: an empty service, as compose reads it
        base = {}
    if not isinstance(base, dict):  # a scalar
        raise located_error(f"extends service {target!r}, which is not a mapping", doc.marks, path + ("service",)
                            if isinstance(svc.get("extends"), dict) else path)
    base = {k: v for k, v in base.items() if k != "extends"}
    if base_doc is not doc:
        base = rebase_service(base, base_doc.base_dir)
        for p, mk in base_doc.marks.items():
            if p[:2] == ("services", target):
                all_marks.setdefault(("services", name) + p[2:], mk)
    child = {k: v for k, v in svc.items() if k != "extends"}
    return merging.merge_services(base, child)


def _suggest(name: str, options: Any) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, list(options or ()), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def rebase_service(svc: dict, base_dir: str) -> dict:
    """Make a service's relative paths absolute against the directory of the file it came from."""
    svc = dict(svc)

    def ab(p: str) -> str:
        p = os.path.expanduser(p)
        return p if os.path.isabs(p) or "://" in p else os.path.normpath(os.path.join(base_dir, p))

    b = svc.get("build")
    if isinstance(b, str):
        svc["build"] = ab(b)
    elif isinstance(b, dict) and isinstance(b.get("context", "."), str):
        svc["build"] = {**b, "context": ab(b.get("context", "."))}
    ef = svc.get("env_file")
    if isinstance(ef, (str, dict)):
        ef = [ef]
    if isinstance(ef, list):
        svc["env_file"] = [ab(e) if isinstance(e, str) else
                           ({**e, "path": ab(e["path"])} if isinstance(e, dict) and isinstance(e.get("path"), str) else e)
                           for e in ef]
    vols = svc.get("volumes")
    if isinstance(vols, list):
        out = []
        for v in vols:
            if isinstance(v, str) and ":" in v and v.startswith((".", "~")):
                src, rest = v.split(":", 1)
                v = ab(src) + ":" + rest
            elif isinstance(v, dict) and v.get("type") == "bind" and isinstance(v.get("source"), str):
                v = {**v, "source": ab(v["source"])}
            out.append(v)
        svc["volumes"] = out
    return svc


def resolve_include(doc: Doc, reader: Reader, all_marks: Marks, seen: tuple = ()) -> dict:
    """Merge the documents named by `include:` into doc.data (their paths rebased to their own dirs).
    A resource defined both here and in an included file is an error, as the specification says."""
    inc = doc.data.get("include")
    if inc is None:
        return doc.data
    if not isinstance(inc, list):
        raise located_error("include must be a list", doc.marks, ("include",))
    data = {k: v for k, v in doc.data.items() if k != "include"}
    for i, entry in enumerate(inc):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or "path" not in entry:
            raise located_error("include entries need a path", doc.marks, ("include", i))
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        for rel in paths:
            file = os.path.normpath(os.path.join(doc.base_dir, str(rel)))
            if file in seen:
                raise located_error(f"include cycle through {file}", doc.marks, ("include", i))
            if not fileio.isfile(file):
                raise located_error(f"included file {rel} not found", doc.marks, ("include", i))
            pdir = entry.get("project_directory")
            base = os.path.normpath(os.path.join(doc.base_dir, str(pdir))) if pdir else os.path.dirname(file)
            sub_reader = reader.for_include(_include_env_files(entry, doc.base_dir, base, doc.marks, i))
            sub = sub_reader.read(file, base)
            sub_data = resolve_include(sub, sub_reader, all_marks, seen + (file,))
            sub_data = resolve_extends(Doc(sub.path, sub_data, sub.marks, sub.base_dir), sub_reader, all_marks)
            for p, mk in sub.marks.items():
                all_marks.setdefault(p, mk)
            for section in ("services", "networks", "volumes", "configs", "secrets"):
                items = sub_data.get(section) or {}
                if not isinstance(items, dict):
                    continue
                mine = data.setdefault(section, {}) if section in data and isinstance(data[section], dict) else None
                if mine is None:
                    data[section] = mine = {}
                for name, value in items.items():
                    if name in mine:
                        raise located_error(f"{section[:-1]} {name!r} is defined both here and in included "
                                            f"file {rel}", doc.marks, (section, name))
                    if section == "services" and isinstance(value, dict):
                        value = rebase_service(value, base)
                    elif section in ("configs", "secrets") and isinstance(value, dict) and value.get("file"):
                        value = {**value, "file": os.path.normpath(os.path.join(base, str(value["file"])))}
                    mine[name] = value
    return data


def _include_env_files(entry: dict, here: str, project_dir: str, marks: Marks, i: int) -> list[str]:
    """include[].env_file (relative to the including file), else the included project's own `.env`."""
    given = entry.get("env_file")
    if given is None:
        default = os.path.join(project_dir, ".env")
        return [default] if fileio.isfile(default) else []
    files = [os.path.normpath(os.path.join(here, str(f))) for f in ([given] if isinstance(given, str) else given)]
    for f in files:
        if not fileio.isfile(f):
            raise located_error(f"env file {f} not found", marks, ("include", i, "env_file"))
    return files


def merge_all(docs: list[dict]) -> dict:
    out: dict = {}
    for d in docs:
        out = merging.merge_documents(out, d) if out else _unwrap_top(d)
    return out


def _unwrap_top(d: dict) -> dict:
    """The first document: its own tags have nothing to act on."""
    return {k: (v.value if isinstance(v, Override) else v) for k, v in d.items() if not isinstance(v, Reset)}
