"""Go text/template, the subset `docker inspect -f` / `docker ps --format` scripts use, over JSON-shaped
values (dicts, lists, str, int, float, bool, None).

No maintained Python library implements Go's template language (PyPI has only a CGo wrapper), so this
is a parser (ui/goparse.py) and an evaluator (here) of Go's grammar: text, `{{- -}}` trimming, comments, pipelines (`|`),
fields and chains (`.A.B`, `$x.A`, `(pipe).A`), variables (`$x := ...`, `$x = ...`, `range $i, $e := ...`),
string/raw/char/number/bool/nil literals, `if`/`else if`/`else`, `range` (with `else`, `break`,
`continue`), `with` (with `else`), and the functions of Go (and, or, not, len, index, slice, print,
printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery) plus docker's (json, join, split, title,
lower, upper, pad, truncate). `define`/`template`/`block` are refused with the position.

Values print as `docker inspect -f` prints its decoded JSON (`[a b]`, `map[k:v]` with sorted keys, null
and `index` of a missing key as `<no value>`); a missing key in a field chain is an error ("map has no
entry for key"), as docker's `missingkey=error`. Errors are TemplateError naming `:line:col` (col counted
from 0, as Go does) in the template."""

from __future__ import annotations

from composer.errors import TemplateError
from composer.ui.gofuncs import FUNCS, NO_VALUE, to_text, truth, type_name
from composer.ui.goparse import Action, Arg, Block, Parser, Pipe, Source, Text


# ------------------------------------------------------------------ evaluation

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; execute(value) renders it with `.` = value."""

    def __init__(self, text: str) -> None:
        self.src = Source(text)
        self.tree = Parser(self.src).parse()

    def execute(self, data) -> str:
        out: list[str] = []
        self._run(self.tree, data, [("$", data)], out)
        return "".join(out)

    def _run(self, nodes: list, dot, vars_: list, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Action):
                value = self._pipe(node.pipe, dot, vars_)
                if not node.pipe.decl:
                    out.append(to_text(value))
            elif isinstance(node, Block):
                self._block(node, dot, vars_, out)
            elif node.kind == "break":
                raise _Break()
            else:
                raise _Continue()

    def _block(self, node: Block, dot, vars_: list, out: list[str]) -> None:
        mark = len(vars_)
        value = self._pipe(node.pipe, dot, vars_, declare=node.kind != "range")
        try:
            if node.kind == "range":
                items = _range_items(value)
                if items is None:
                    raise self.src.error(node.pos, f"range can't iterate over {to_text(value)}")
                for key, item in items:
                    if node.pipe.decl:
                        names = node.pipe.decl
                        vars_.append((names[-1], item))
                        if len(names) == 2:
                            vars_.append((names[0], key))
                    try:
                        self._run(node.body, item, vars_, out)
                    except _Continue:
                        pass
                    except _Break:
                        break
                    finally:
                        del vars_[mark:]
                if not items and node.else_ is not None:
                    self._run(node.else_, dot, vars_, out)
            elif truth(value):
                self._run(node.body, value if node.kind == "with" else dot, vars_, out)
            elif node.else_ is not None:
                self._run(node.else_, dot, vars_, out)
        finally:
            del vars_[mark:]

    def _pipe(self, pipe: Pipe, dot, vars_: list, declare: bool = True):
        value = _MISSING
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, vars_, value)
        if pipe.decl and declare:
            if pipe.assign:
                for k in range(len(vars_) - 1, -1, -1):
                    if vars_[k][0] == pipe.decl[0]:
                        vars_[k] = (pipe.decl[0], value)
                        break
                else:
                    raise self.src.error(pipe.pos, f"undefined variable: {pipe.decl[0]}")
            else:
                vars_.append((pipe.decl[0], value))
        return value

    def _command(self, cmd: list[Arg], dot, vars_: list, piped):
        first = cmd[0]
        if first.kind == "ident" and first.value in ("and", "or") and len(cmd) > 1:
            # Go evaluates these lazily: `and .A .A.B` never looks at .A.B when .A is empty
            value = None
            for a in cmd[1:]:
                value = self._arg(a, dot, vars_)
                if truth(value) == (first.value == "or"):
                    return value
            if piped is not _MISSING:
                return piped
            return value
        if first.kind == "ident":
            args = [self._arg(a, dot, vars_) for a in cmd[1:]]
            if piped is not _MISSING:
                args.append(piped)
            return self._call(first, args)
        if len(cmd) > 1 or piped is not _MISSING:
            raise self.src.error(first.pos, f"can't give argument to non-function {self._show(first)}")
        return self._arg(first, dot, vars_)

    def _call(self, fn: Arg, args: list):
        try:
            return FUNCS[fn.value](*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise self.src.error(fn.pos, f'error calling {fn.value}: {e}') from None

    def _arg(self, a: Arg, dot, vars_: list):
        if a.kind == "lit":
            return a.value
        if a.kind == "nil":
            raise self.src.error(a.pos, "nil is not a command")
        if a.kind == "ident":
            return self._call(a, [])
        if a.kind == "dot":
            return dot
        if a.kind == "field":
            base = dot
        elif a.kind == "var":
            for name, value in reversed(vars_):
                if name == a.value:
                    base = value
                    break
            else:
                raise self.src.error(a.pos, f"undefined variable: {a.value}")
        else:
            base = self._pipe(a.value, dot, vars_)
        return self._chain(a, base)

    def _chain(self, a: Arg, value):
        for name in a.chain:
            if isinstance(value, dict):
                if name not in value:
                    raise self.src.error(a.pos, f'executing "" at <{self._show(a)}>: map has no entry for key "{name}"')
                value = value[name]
            elif value is None or value is NO_VALUE:
                raise self.src.error(a.pos, f"executing \"\" at <{self._show(a)}>: nil pointer evaluating .{name}")
            else:
                raise self.src.error(a.pos, f"executing \"\" at <{self._show(a)}>: can't evaluate field {name} "
                                            f"in type {type_name(value)}")
        return value

    def _show(self, a: Arg) -> str:
        chain = "".join("." + c for c in a.chain)
        return {"field": chain, "var": f"{a.value}{chain}", "dot": ".", "pipe": f"(...){chain}"}.get(
            a.kind, repr(a.value))


_MISSING = object()


def _range_items(value):
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    if value is None or value is NO_VALUE:
        return []
    return None


def render(template: str, value) -> str:
    """Parse and execute in one go (a parse error is raised before anything is printed)."""
    return Template(template).execute(value)
