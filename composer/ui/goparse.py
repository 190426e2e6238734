"""The parser of composer's Go templates (ui/gotemplate.py runs what it builds): Go's lexical
grammar inside `{{ }}` (fields, variables, string/raw/char/number literals, parentheses, pipes,
`:=`/`=`), trim markers and comments, and the tree of text, actions and if/range/with blocks.
Every error names the template position as Go does (`template: :LINE:COL: ...`)."""

from __future__ import annotations

import re

from composer.errors import TemplateError
from composer.ui.gofuncs import FUNCS


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


class Token:
    __slots__ = ("kind", "text", "pos", "chain")

    def __init__(self, kind: str, text: str, pos: int, chain: str = "") -> None:
        self.kind, self.text, self.pos, self.chain = kind, text, pos, chain


class Source:
    def __init__(self, text: str) -> None:
        self.text = text

    def where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1)
        return f"template: :{line}:{col}"

    def error(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"{self.where(pos)}: {message}")


def _lex_action(src: Source, start: int, end: int) -> list[Token]:
    toks: list[Token] = []
    pos = start
    while pos < end:
        m = _TOKEN.match(src.text, pos, end)
        if not m:
            raise src.error(pos, f"unexpected {src.text[pos]!r} in action")
        kind = m.lastgroup if m.lastgroup != "chain" else "rparen"
        if kind not in ("space", "comment"):
            toks.append(Token(kind, m.group(kind), pos, m.group("chain") or "" if kind == "rparen" else ""))
        pos = m.end()
    return toks


# ------------------------------------------------------------------ parse tree

class Node:
    pos = 0


class Text(Node):
    def __init__(self, text: str) -> None:
        self.text = text


class Arg(Node):
    """kind: field (.A.B), var ($x.A), dot, lit, ident (a function name), nil, pipe ((..).A)."""

    def __init__(self, kind: str, pos: int, value=None, chain: tuple[str, ...] = ()) -> None:
        self.kind, self.pos, self.value, self.chain = kind, pos, value, chain


class Pipe(Node):
    def __init__(self, pos: int, decl: tuple[str, ...], assign: bool, cmds: list[list[Arg]]) -> None:
        self.pos, self.decl, self.assign, self.cmds = pos, decl, assign, cmds


class Block(Node):
    """if / range / with; else_ is a list of nodes (an `else if` is an if block inside it)."""

    def __init__(self, kind: str, pos: int, pipe: Pipe, body: list, else_: list | None) -> None:
        self.kind, self.pos, self.pipe, self.body, self.else_ = kind, pos, pipe, body, else_


class Action(Node):
    def __init__(self, pos: int, pipe: Pipe) -> None:
        self.pos, self.pipe = pos, pipe


class Jump(Node):
    def __init__(self, kind: str, pos: int) -> None:
        self.kind, self.pos = kind, pos


def _actions(src: Source):
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


def _find_close(src: Source, pos: int) -> int:
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


class Parser:
    def __init__(self, src: Source) -> None:
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
                out.append(Text(chunk))
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
                out.append(Jump(word, pos))
            elif word in ("define", "template", "block"):
                raise self.src.error(pos, f"{{{{{word}}}}} is not supported by composer's templates")
            else:
                out.append(Action(pos, self.pipeline(toks, pos)))
        if stops:
            raise self.src.error(len(self.src.text), "unexpected EOF: a block is not closed with {{end}}")
        return out, None

    def block(self, kind: str, pos: int, toks: list[Token]) -> Block:
        pipe = self.pipeline(toks, pos, in_range=kind == "range")
        body, (word, epos, rest) = self.nodes(("end", "else"))
        else_ = None
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                if rest[0].text != kind:
                    raise self.src.error(epos, f"else {rest[0].text} in a {kind} block")
                # `else if`: an if block in the else branch; the one {{end}} closes both
                else_ = [self.block(kind, epos, rest[1:])]
                return Block(kind, pos, pipe, body, else_)
            if rest:
                raise self.src.error(epos, "unexpected text after else")
            else_, (word, epos, rest) = self.nodes(("end",))
        if rest:
            raise self.src.error(epos, "unexpected text after end")
        return Block(kind, pos, pipe, body, else_)

    def pipeline(self, toks: list[Token], pos: int, in_range: bool = False) -> Pipe:
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
        return Pipe(pos, decl, assign, cmds)

    def _commands(self, toks: list[Token], i: int, pos: int):
        cmds: list[list[Arg]] = [[]]
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

    def _operand(self, toks: list[Token], i: int):
        t = toks[i]
        k = t.kind
        if k == "field":
            return Arg("field", t.pos, chain=tuple(t.text[1:].split("."))), i + 1
        if k == "dot":
            return Arg("dot", t.pos), i + 1
        if k == "var":
            name, *chain = t.text.split(".")
            return Arg("var", t.pos, name, tuple(chain)), i + 1
        if k == "string":
            return Arg("lit", t.pos, _unquote(self.src, t)), i + 1
        if k == "raw":
            return Arg("lit", t.pos, t.text[1:-1]), i + 1
        if k == "char":
            return Arg("lit", t.pos, ord(_unquote(self.src, t))), i + 1
        if k == "number":
            return Arg("lit", t.pos, _number(self.src, t)), i + 1
        if k == "ident":
            if t.text in ("true", "false"):
                return Arg("lit", t.pos, t.text == "true"), i + 1
            if t.text == "nil":
                return Arg("nil", t.pos), i + 1
            if t.text not in FUNCS:
                raise self.src.error(t.pos, f'function "{t.text}" not defined')
            return Arg("ident", t.pos, t.text), i + 1
        if k == "lparen":
            cmds, j = self._commands(toks, i + 1, t.pos)
            if j >= len(toks) or toks[j].kind != "rparen":
                raise self.src.error(t.pos, "unclosed left paren")
            chain = tuple(toks[j].chain[1:].split(".")) if toks[j].chain else ()
            return Arg("pipe", t.pos, Pipe(t.pos, (), False, cmds), chain), j + 1
        raise self.src.error(t.pos, f"unexpected {t.text!r} in operand")


def _unquote(src: Source, t: Token) -> str:
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


def _number(src: Source, t: Token):
    text = t.text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xXbBoO].*", text):
            return int(text, 0)
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text, 8) if len(text.lstrip("+-")) > 1 and text.lstrip("+-")[0] == "0" else int(text)
        return float(text)
    except ValueError:
        raise src.error(t.pos, f"bad number syntax: {t.text!r}") from None
