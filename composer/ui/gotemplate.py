"""Go text/template, the subset `docker inspect -f` / `docker ps --format` scripts use, over JSON-shaped
values (dicts, lists, str, int, float, bool, None).

No maintained Python library implements Go's template language (PyPI has only a CGo wrapper), so this
is a parser and an evaluator of Go's grammar: text, `{{- -}}` trimming, comments, pipelines (`|`),
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

import re

from composer.errors import TemplateError
from composer.ui.gofuncs import FUNCS, NO_VALUE, to_text, truth, type_name



# ------------------------------------------------------------------ lexer

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*.*?\*/)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<lparen>\()
  | (?P<rparen>\))(?P<chain>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<pipe>\|)
  | (?P<comma>,)
""", re.X | re.S)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0"}


class _Tok:
    __slots__ = ("kind", "text", "pos", "chain")

    def __init__(self, kind: str, text: str, pos: int, chain: str = "") -> None:
        self.kind, self.text, self.pos, self.chain = kind, text, pos, chain


class _Source:
    def __init__(self, text: str) -> None:
        self.text = text

    def where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1)
        return f"template: :{line}:{col}"

    def error(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"{self.where(pos)}: {message}")


def _lex_action(src: _Source, start: int, end: int) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = start
    while pos < end:
        m = _TOKEN.match(src.text, pos, end)
        if not m:
            raise src.error(pos, f"unexpected {src.text[pos]!r} in action")
        kind = m.lastgroup if m.lastgroup != "chain" else "rparen"
        if kind not in ("space", "comment"):
            toks.append(_Tok(kind, m.group(kind), pos, m.group("chain") or "" if kind == "rparen" else ""))
        pos = m.end()
    return toks


# ------------------------------------------------------------------ parse tree

class _Node:
    pos = 0


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Arg(_Node):
    """kind: field (.A.B), var ($x.A), dot, lit, ident (a function name), nil, pipe ((..).A)."""

    def __init__(self, kind: str, pos: int, value=None, chain: tuple[str, ...] = ()) -> None:
        self.kind, self.pos, self.value, self.chain = kind, pos, value, chain


class _Pipe(_Node):
    def __init__(self, pos: int, decl: tuple[str, ...], assign: bool, cmds: list[list[_Arg]]) -> None:
        self.pos, self.decl, self.assign, self.cmds = pos, decl, assign, cmds


class _Block(_Node):
    """if / range / with; else_ is a list of nodes (an `else if` is an if block inside it)."""

    def __init__(self, kind: str, pos: int, pipe: _Pipe, body: list, else_: list | None) -> None:
        self.kind, self.pos, self.pipe, self.body, self.else_ = kind, pos, pipe, body, else_


class _Action(_Node):
    def __init__(self, pos: int, pipe: _Pipe) -> None:
        self.pos, self.pipe = pos, pipe


class _Jump(_Node):
    def __init__(self, kind: str, pos: int) -> None:
        self.kind, self.pos = kind, pos


def _actions(src: _Source):
    """(text before, action tokens or None, action position), with Go's trim markers applied."""
    text, pos, trim_next = src.text, 0, False
    while True:
        start = text.find("{{", pos)
        if start < 0:
            chunk = text[pos:]
            yield (chunk.lstrip() if trim_next else chunk), None, len(text)
            return
        inner = start + 2
        trim_left = text.startswith("{{- ", start) or text.startswith("{{-\t", start) or \
            text.startswith("{{-\n", start)
        if trim_left:
            inner += 2
        close = _find_close(src, inner)
        end = close
        trim_right = close >= 2 and text[close - 2:close] in (" -", "\t-", "\n-")
        if trim_right:
            end = close - 2
        chunk = text[pos:start]
        if trim_next:
            chunk = chunk.lstrip()
        if trim_left:
            chunk = chunk.rstrip()
        yield chunk, _lex_action(src, inner, end), start
        pos, trim_next = close + 2, trim_right


def _find_close(src: _Source, pos: int) -> int:
    """The `}}` that ends the action at pos (skipping quoted text and comments)."""
    text, i = src.text, pos
    while i < len(text):
        c = text[i]
        if text.startswith("}}", i):
            return i
        if c in "\"`'":
            j = i + 1
            while j < len(text) and text[j] != c:
                if text[j] == "\n" and c != "`":
                    raise src.error(i, "unterminated quoted string")
                j += 2 if text[j] == "\\" and c != "`" else 1
            if j >= len(text):
                raise src.error(i, "unterminated quoted string")
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise src.error(i, "unclosed comment")
            i = j + 2
        else:
            i += 1
    raise src.error(pos - 2, "unclosed action")


class _Parser:
    def __init__(self, src: _Source) -> None:
        self.src = src
        self.items = list(_actions(src))
        self.i = 0

    def parse(self) -> list:
        body, end = self.nodes(())
        if end is not None:
            raise self.src.error(end[1], f"unexpected {{{{{end[0]}}}}}")
        return body

    def nodes(self, stops: tuple[str, ...]):
        """Nodes up to one of the stop keywords (returned with its tokens), or the end."""
        out: list = []
        while self.i < len(self.items):
            chunk, toks, pos = self.items[self.i]
            self.i += 1
            if chunk:
                out.append(_Text(chunk))
            if toks is None:
                break
            if not toks:  # a comment alone
                continue
            head = toks[0]
            word = head.text if head.kind == "ident" else ""
            if word in ("end", "else"):
                if word not in stops:
                    raise self.src.error(pos, f"unexpected {{{{{word}}}}}")
                return out, (word, pos, toks[1:])
            if word in ("if", "range", "with"):
                out.append(self.block(word, pos, toks[1:]))
            elif word in ("break", "continue"):
                out.append(_Jump(word, pos))
            elif word in ("define", "template", "block"):
                raise self.src.error(pos, f"{{{{{word}}}}} is not supported by composer's templates")
            else:
                out.append(_Action(pos, self.pipeline(toks, pos)))
        if stops:
            raise self.src.error(len(self.src.text), "unexpected EOF: a block is not closed with {{end}}")
        return out, None

    def block(self, kind: str, pos: int, toks: list[_Tok]) -> _Block:
        pipe = self.pipeline(toks, pos, in_range=kind == "range")
        body, (word, epos, rest) = self.nodes(("end", "else"))
        else_ = None
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                if rest[0].text != kind:
                    raise self.src.error(epos, f"else {rest[0].text} in a {kind} block")
                # `else if`: an if block in the else branch; the one {{end}} closes both
                else_ = [self.block(kind, epos, rest[1:])]
                return _Block(kind, pos, pipe, body, else_)
            if rest:
                raise self.src.error(epos, "unexpected text after else")
            else_, (word, epos, rest) = self.nodes(("end",))
        if rest:
            raise self.src.error(epos, "unexpected text after end")
        return _Block(kind, pos, pipe, body, else_)

    def pipeline(self, toks: list[_Tok], pos: int, in_range: bool = False) -> _Pipe:
        decl: tuple[str, ...] = ()
        assign = False
        bare = [t.kind == "var" and "." not in t.text for t in toks[:3]]
        if len(toks) > 1 and bare[0] and toks[1].kind in ("declare", "assign"):
            decl, assign, toks = (toks[0].text,), toks[1].kind == "assign", toks[2:]
        elif in_range and len(toks) > 3 and bare[0] and toks[1].kind == "comma" and bare[2] and \
                toks[3].kind == "declare":
            decl, toks = (toks[0].text, toks[2].text), toks[4:]
        if not toks:
            raise self.src.error(pos, "missing value for command")
        cmds, i = self._commands(toks, 0, pos)
        if i != len(toks):
            raise self.src.error(toks[i].pos, f"unexpected {toks[i].text!r} in operand")
        return _Pipe(pos, decl, assign, cmds)

    def _commands(self, toks: list[_Tok], i: int, pos: int):
        cmds: list[list[_Arg]] = [[]]
        while i < len(toks):
            t = toks[i]
            if t.kind == "pipe":
                if not cmds[-1]:
                    raise self.src.error(t.pos, "missing command before |")
                cmds.append([])
                i += 1
                continue
            if t.kind == "rparen":
                break
            arg, i = self._operand(toks, i)
            cmds[-1].append(arg)
        if not cmds[-1]:
            raise self.src.error(toks[i - 1].pos if i else pos, "missing command")
        return cmds, i

    def _operand(self, toks: list[_Tok], i: int):
        t = toks[i]
        k = t.kind
        if k == "field":
            return _Arg("field", t.pos, chain=tuple(t.text[1:].split("."))), i + 1
        if k == "dot":
            return _Arg("dot", t.pos), i + 1
        if k == "var":
            name, *chain = t.text.split(".")
            return _Arg("var", t.pos, name, tuple(chain)), i + 1
        if k == "string":
            return _Arg("lit", t.pos, _unquote(self.src, t)), i + 1
        if k == "raw":
            return _Arg("lit", t.pos, t.text[1:-1]), i + 1
        if k == "char":
            return _Arg("lit", t.pos, ord(_unquote(self.src, t))), i + 1
        if k == "number":
            return _Arg("lit", t.pos, _number(self.src, t)), i + 1
        if k == "ident":
            if t.text in ("true", "false"):
                return _Arg("lit", t.pos, t.text == "true"), i + 1
            if t.text == "nil":
                return _Arg("nil", t.pos), i + 1
            if t.text not in FUNCS:
                raise self.src.error(t.pos, f'function "{t.text}" not defined')
            return _Arg("ident", t.pos, t.text), i + 1
        if k == "lparen":
            cmds, j = self._commands(toks, i + 1, t.pos)
            if j >= len(toks) or toks[j].kind != "rparen":
                raise self.src.error(t.pos, "unclosed left paren")
            chain = tuple(toks[j].chain[1:].split(".")) if toks[j].chain else ()
            return _Arg("pipe", t.pos, _Pipe(t.pos, (), False, cmds), chain), j + 1
        raise self.src.error(t.pos, f"unexpected {t.text!r} in operand")


def _unquote(src: _Source, t: _Tok) -> str:
    body, out, i = t.text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        else:
            raise src.error(t.pos, f"invalid escape \\{e} in quoted string")
    return "".join(out)


def _number(src: _Source, t: _Tok):
    text = t.text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xXbBoO].*", text):
            return int(text, 0)
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text, 8) if len(text.lstrip("+-")) > 1 and text.lstrip("+-")[0] == "0" else int(text)
        return float(text)
    except ValueError:
        raise src.error(t.pos, f"bad number syntax: {t.text!r}") from None


# ------------------------------------------------------------------ evaluation

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; execute(value) renders it with `.` = value."""

    def __init__(self, text: str) -> None:
        self.src = _Source(text)
        self.tree = _Parser(self.src).parse()

    def execute(self, data) -> str:
        out: list[str] = []
        self._run(self.tree, data, [("$", data)], out)
        return "".join(out)

    def _run(self, nodes: list, dot, vars_: list, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self._pipe(node.pipe, dot, vars_)
                if not node.pipe.decl:
                    out.append(to_text(value))
            elif isinstance(node, _Block):
                self._block(node, dot, vars_, out)
            elif node.kind == "break":
                raise _Break()
            else:
                raise _Continue()

    def _block(self, node: _Block, dot, vars_: list, out: list[str]) -> None:
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

    def _pipe(self, pipe: _Pipe, dot, vars_: list, declare: bool = True):
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

    def _command(self, cmd: list[_Arg], dot, vars_: list, piped):
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

    def _call(self, fn: _Arg, args: list):
        try:
            return FUNCS[fn.value](*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise self.src.error(fn.pos, f'error calling {fn.value}: {e}') from None

    def _arg(self, a: _Arg, dot, vars_: list):
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

    def _chain(self, a: _Arg, value):
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

    def _show(self, a: _Arg) -> str:
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
