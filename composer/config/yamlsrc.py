"""YAML text -> plain data plus the file:line:column of every node.

We compose the node tree with PyYAML's C parser and build the Python values ourselves, so that every
value keeps a mark (for error messages), the compose tags `!reset` / `!override` survive as wrapper
objects until the merge, and plain scalars are typed as YAML 1.2 and the reference implementation (Go's
yaml.v3) type them, not as PyYAML's YAML 1.1 resolver does: `22:22` is a string, not the base-60 1342;
`yes`/`on`/`y` are strings; `1e3` is a number; `1_000`, `0755`, `0o755`, `0x1F` are integers as Go reads
them (`resolve_plain`).

`parse` is the one function that reads YAML text (documents.Reader calls it for every file)."""

from __future__ import annotations

from typing import Any, NamedTuple

import re

import yaml

from composer.errors import ConfigError

try:  # the C parser is several times faster; fall back to pure Python where libyaml is missing
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader  # type: ignore[misc]

_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
# Tags PyYAML's resolver gives an untagged plain scalar (an explicit `!!int` keeps its own meaning only when
# written: PyYAML cannot tell us, so explicit core tags on plain scalars are typed as YAML 1.2 too).
_IMPLICIT = frozenset({_STR, _BOOL, _NULL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                       "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml"})
_MAX_NODES = 2_000_000  # alias bombs ("billion laughs") stop here instead of eating the memory
# ...and sooner in a small file: a file without aliases has fewer nodes than characters, so a budget
# of a few nodes per character (at least _MIN_BUDGET) lets real anchors through and stops a bomb in ms
_MIN_BUDGET, _PER_CHAR = 100_000, 4


_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # yaml.v3's yamlStyleFloat
_GO_INT = re.compile(r"[-+]?(0[xX](_?[0-9a-fA-F])+|0[oO](_?[0-7])+|0[bB](_?[01])+|0(_?[0-7])*|[1-9](_?[0-9])*)")
_NUMERIC_START = frozenset("0123456789+-.")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"), "+.inf": float("inf"),
                   "+.Inf": float("inf"), "+.INF": float("inf"), "-.inf": float("-inf"), "-.Inf": float("-inf"),
                   "-.INF": float("-inf"), ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan")}


def resolve_plain(text: str) -> Any:
    """An untagged plain scalar as yaml.v3 (docker compose's parser) reads it: YAML 1.2's core schema
    plus Go's integer literals (strconv.ParseInt base 0: `0755` octal, `1_000`, `0x1F`, `0b11`)."""
    if text in _NULLS:
        return None
    b = _BOOLS.get(text)
    if b is not None:
        return b
    c = text[0]
    if c in "0123456789+-":
        if _GO_INT.fullmatch(text):
            sign, digits = (text[0], text[1:]) if text[0] in "+-" else ("", text)
            if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXoObB":
                digits = "0o" + digits[1:]  # Go's legacy octal
            value = int(sign + digits, 0)
            if -(1 << 63) <= value < (1 << 64):
                return value
        if _GO_FLOAT.fullmatch(text):
            return float(text)
    elif c == "." and (text in _SPECIAL_FLOATS or _GO_FLOAT.fullmatch(text)):
        return _SPECIAL_FLOATS.get(text) if text in _SPECIAL_FLOATS else float(text)
    return text


def scalar_text(v: Any) -> str | None:
    """A YAML scalar as the text docker compose gives it (Go's formatting: 1e3 -> "1000", .inf -> "+Inf")."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "+Inf" if v > 0 else "-Inf"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    return str(v)


def opt_text(v: Any) -> str | None:
    return None if v is None else scalar_text(v)


class Mark(NamedTuple):  # a NamedTuple: one is made per node, and it is cheaper than a dataclass
    file: str
    line: int  # 1-based
    column: int  # 1-based


class Reset:
    """`!reset`: remove the value inherited from earlier files."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "!reset"


RESET = Reset()


class Override:
    """`!override value`: replace the inherited value instead of merging with it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"!override {self.value!r}"


Path = tuple  # a path into the document: ("services", "web", "ports", 0)
Marks = dict  # Path -> Mark


def parse(text: str, file: str) -> tuple[Any, Marks]:
    """Parse one YAML document. Returns (data, marks). Malformed YAML -> ConfigError at the parser's
    line and column."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=file,
                          line=mark.line + 1 if mark else None,
                          column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML: {err}", file=file) from None
    finally:
        loader.dispose()
    marks: Marks = {}
    if node is None:
        return None, marks
    builder = _Builder(loader, file, marks, min(_MAX_NODES, max(_MIN_BUDGET, _PER_CHAR * len(text))))
    marks[()] = Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)
    return builder.build(node, ()), marks


class _Builder:
    def __init__(self, loader: Any, file: str, marks: Marks, budget: int = _MAX_NODES) -> None:
        self.loader, self.file, self.marks = loader, file, marks
        self.count, self.budget, self.root = 0, budget, None
        self.active: set[int] = set()  # node ids on the current path: recursive aliases

    def error(self, msg: str, node: yaml.Node) -> ConfigError:
        m = node.start_mark
        return ConfigError(msg, file=self.file, line=m.line + 1, column=m.column + 1)

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.root is None:
            self.root = node
        if self.count > self.budget:
            raise self.too_large(node)
        tag = node.tag
        if tag == _STR:  # the common case first: this walk is most of the parse time
            v = node.value
            # a plain scalar YAML 1.1 calls a string may be a YAML 1.2 number (`1e3`, `0o755`)
            return v if node.style or not v or v[0] not in _NUMERIC_START else resolve_plain(v)
        if tag == "!reset":
            return RESET
        if tag == "!override":
            node.tag = self.default_tag(node)
            try:
                return Override(self.build(node, path))
            finally:
                node.tag = "!override"
        cls = type(node)
        if cls is yaml.ScalarNode:
            return self.scalar(node)
        nid = id(node)
        if nid in self.active:
            raise self.error("recursive YAML alias", node)
        self.active.add(nid)
        try:
            if cls is yaml.SequenceNode:
                marks, file = self.marks, self.file
                out = []
                for i, item in enumerate(node.value):
                    sub = path + (i,)
                    m = item.start_mark
                    marks[sub] = Mark(file, m.line + 1, m.column + 1)
                    out.append(self.build(item, sub))
                return out
            if cls is yaml.MappingNode:
                return self.mapping(node, path)
        finally:
            self.active.discard(nid)
        raise self.error(f"unsupported YAML node {tag}", node)  # pragma: no cover

    def too_large(self, node: yaml.Node) -> ConfigError:
        """Say which: aliases expanding past the budget, or a document that is itself that large."""
        written, seen, todo = 0, set(), [self.root]
        while todo:  # the nodes as written: each once, however many aliases name it
            n = todo.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            written += 1
            if isinstance(n, yaml.SequenceNode):
                todo.extend(n.value)
            elif isinstance(n, yaml.MappingNode):
                todo.extend(v for kv in n.value for v in kv)
        if written < self.budget:
            return self.error(f"too many aliases expanded: more than {self.budget} values from {written} written "
                              "(an alias bomb?)", node)
        return self.error(f"document too large: more than {self.budget} values", node)

    def default_tag(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "tag:yaml.org,2002:map"
        if isinstance(node, yaml.SequenceNode):
            return "tag:yaml.org,2002:seq"
        return self.loader.resolve(yaml.ScalarNode, node.value, (True, False))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if not node.style and tag in _IMPLICIT:  # untagged plain: YAML 1.2
            return resolve_plain(node.value)
        if tag == _STR:
            return node.value
        if tag == _BOOL:
            low = node.value.lower()
            return node.value if low not in ("true", "false") else low == "true"
        if tag == _NULL:
            return None
        if node.tag.startswith("!"):
            raise self.error(f"unknown YAML tag {node.tag}", node)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise self.error(f"invalid value {node.value!r}: {getattr(err, 'problem', err)}", node) from None

    def key(self, node: yaml.Node) -> str:
        if node.tag == _STR:
            return node.value
        if not isinstance(node, yaml.ScalarNode):
            raise self.error("mapping keys must be strings", node)
        value = self.scalar(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                for src in vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]:
                    value = self.build(src, path)
                    if not isinstance(value, dict):
                        raise self.error("a merge key (<<) needs a mapping", src)
                    for k, v in value.items():
                        merged.setdefault(k, v)
                continue
            key = self.key(knode)
            sub = path + (key,)
            if key in out:
                first = self.marks.get(sub)
                where = f" (first at line {first.line})" if first and first.file == self.file else ""
                raise self.error(f"duplicate key {key!r}{where}", knode)
            m = knode.start_mark
            self.marks[sub] = Mark(self.file, m.line + 1, m.column + 1)
            out[key] = self.build(vnode, sub)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out


def strip_tags(value: Any) -> Any:
    """Drop leftover Reset/Override wrappers (a single file's own tags are no-ops after merging)."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value
