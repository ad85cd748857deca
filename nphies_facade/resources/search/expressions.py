"""A small FHIRPath tokenizer and parser: enough to split unions and to compile path-shaped expressions.

It reads the whole FHIRPath operator grammar so that it can tell what an expression is, but the node
kinds are only those the compiler and the union splitter use; anything else raises `FhirPathSyntaxError`
(which the compiler reads as "leave this one to fhirpathpy").
"""

import re
from dataclasses import dataclass


class FhirPathSyntaxError(ValueError):
    """The expression is not valid FHIRPath, or uses syntax this parser does not read."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "ident", "string", "number", "var", "op", "end"
    text: str
    position: int


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<backtick>`(?:[^`\\]|\\.)*`)
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<var>%(?:[A-Za-z_][A-Za-z0-9_]*|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`))
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>!=|!~|<=|>=|[=~<>|.()\[\],+\-*/&{}])
    """,
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise FhirPathSyntaxError(f"unexpected {expression[position]!r} at {position} in {expression!r}")
        kind = match.lastgroup or ""
        if kind == "backtick":
            tokens.append(Token("ident", _unescape(match.group()[1:-1]), position))
        elif kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", position))
    return tokens


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u"):
            return chr(int(escaped[1:], 16))
        if escaped not in _ESCAPES:
            raise FhirPathSyntaxError(f"unknown escape \\{escaped}")
        return _ESCAPES[escaped]

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, body)


def string_literal_value(token_text: str) -> str:
    return _unescape(token_text[1:-1])


def split_union(expression: str) -> list[str]:
    """The top-level `|` branches of an expression, stripped (parentheses and strings are respected)."""
    branches: list[str] = []
    depth = 0
    start = 0
    for token in tokenize(expression):
        if token.kind != "op":
            continue
        if token.text in "([{":
            depth += 1
        elif token.text in ")]}":
            depth -= 1
            if depth < 0:
                raise FhirPathSyntaxError(f"unbalanced ')' at {token.position} in {expression!r}")
        elif token.text == "|" and depth == 0:
            branches.append(expression[start : token.position].strip())
            start = token.position + 1
    if depth != 0:
        raise FhirPathSyntaxError(f"unbalanced parentheses in {expression!r}")
    branches.append(expression[start:].strip())
    if any(not branch for branch in branches):
        raise FhirPathSyntaxError(f"empty union branch in {expression!r}")
    return branches


# Syntax tree


@dataclass(frozen=True, slots=True)
class Literal:
    value: object  # str, bool, int or float


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


@dataclass(frozen=True, slots=True)
class Member:
    """`target.name`, or `name` on the input collection when target is None."""

    target: object | None
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    target: object | None
    name: str
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Index:
    target: object
    index: object


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class TypeOperation:
    """`target as Type` or `target is Type`."""

    op: str
    target: object
    type_name: str


Node = Literal | Variable | Member | Call | Index | Binary | TypeOperation

# Operator precedence, loosest first (FHIRPath N1 section 6.7); `as`/`is` sit between union and additive.
_BINARY_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"implies"}),
    frozenset({"or", "xor"}),
    frozenset({"and"}),
    frozenset({"in", "contains"}),
    frozenset({"=", "~", "!=", "!~"}),
    frozenset({"<", ">", "<=", ">="}),
    frozenset({"|"}),
)
_ADDITIVE_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"+", "-", "&"}),
    frozenset({"*", "/", "div", "mod"}),
)


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.position = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def is_operator(self, token: Token, operators: frozenset[str]) -> bool:
        return token.kind in ("op", "ident") and token.text in operators

    def expect(self, text: str) -> None:
        token = self.advance()
        if token.text != text or token.kind not in ("op", "ident"):
            raise self.error(f"expected {text!r}", token)

    def error(self, message: str, token: Token | None = None) -> FhirPathSyntaxError:
        token = token or self.current
        return FhirPathSyntaxError(f"{message} at {token.position} in {self.expression!r}")

    def parse(self) -> Node:
        node = self.binary(0)
        if self.current.kind != "end":
            raise self.error(f"unexpected {self.current.text!r}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.type_operation()
        node = self.binary(level + 1)
        while self.is_operator(self.current, _BINARY_LEVELS[level]):
            op = self.advance().text
            node = Binary(op, node, self.binary(level + 1))
        return node

    def type_operation(self) -> Node:
        node = self.additive(0)
        while self.is_operator(self.current, frozenset({"as", "is"})):
            op = self.advance().text
            node = TypeOperation(op, node, self.type_specifier())
        return node

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while self.current.text == "." and self.current.kind == "op":
            self.advance()
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        token = self.advance()
        if token.kind != "ident":
            raise self.error("expected an identifier", token)
        return token.text

    def additive(self, level: int) -> Node:
        if level == len(_ADDITIVE_LEVELS):
            return self.unary()
        node = self.additive(level + 1)
        while self.is_operator(self.current, _ADDITIVE_LEVELS[level]):
            op = self.advance().text
            node = Binary(op, node, self.additive(level + 1))
        return node

    def unary(self) -> Node:
        if self.current.kind == "op" and self.current.text in ("+", "-"):
            raise self.error("unary operators are not supported")
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while self.current.kind == "op" and self.current.text in (".", "["):
            if self.advance().text == "[":
                node = Index(node, self.binary(0))
                self.expect("]")
            else:
                node = self.invocation(node)
        return node

    def invocation(self, target: Node | None) -> Node:
        name = self.identifier()
        if self.current.text != "(" or self.current.kind != "op":
            return Member(target, name)
        self.advance()
        args: list[Node] = []
        if self.current.text != ")":
            args.append(self.binary(0))
            while self.current.text == "," and self.current.kind == "op":
                self.advance()
                args.append(self.binary(0))
        self.expect(")")
        return Call(target, name, tuple(args))

    def term(self) -> Node:
        token = self.current
        if token.kind == "op" and token.text == "(":
            self.advance()
            node = self.binary(0)
            self.expect(")")
            return node
        if token.kind == "string":
            self.advance()
            return Literal(string_literal_value(token.text))
        if token.kind == "number":
            self.advance()
            return Literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "var":
            self.advance()
            return Variable(token.text[1:].strip("'`"))
        if token.kind == "ident" and token.text in ("true", "false"):
            self.advance()
            return Literal(token.text == "true")
        if token.kind == "ident":
            return self.invocation(None)
        raise self.error(f"unexpected {token.text!r}")


def parse(expression: str) -> Node:
    """The syntax tree of a FHIRPath expression."""
    return _Parser(expression).parse()
