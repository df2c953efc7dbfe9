"""The run search language: `KEY OP VALUE` comparisons joined with `and`, `or` and parentheses.

    config.lr < 0.01 and config.optimizer = adam and (best_val_acc > 0.95 or tag = baseline)

`parse` turns text into a tree (plain Python, no database); `search_q` turns the tree into a Django `Q` over runs.
A bad query raises `SearchError`, whose sentence names the 0-based character position. The text and its
nesting are bounded, so what a member sends costs a bounded parse.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import CharField, DurationField, ExpressionWrapper, F, Func, Q
from django.db.models import Value as V
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, LessThan, LessThanOrEqual

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_COMPARISONS = 50

OPERATORS = ("<=", ">=", "!=", "=", "<", ">", "~")
# Results: (model field or "duration", kind).
RESULTS = {
    "best_val_acc": "number", "test_acc": "number", "epochs": "number", "duration": "number",
    "status": "text", "created": "date",
}
OBJECTS = ("dataset", "dataset.version", "experiment", "sweep", "tag", "by")
KEYS_HELP = "a result (" + ", ".join(RESULTS) + "), config.<key>, " + ", ".join(OBJECTS)
_KEY_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_BARE = re.compile(r"[^\s()=!<>~\"']+")


class SearchError(ValueError):
    """A query that cannot be read: `sentence` says what was expected, `position` where (0-based)."""

    def __init__(self, sentence: str, position: int):
        self.sentence, self.position = sentence, position
        super().__init__(f"{sentence} at position {position}")


# --- the tree ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool
    position: int

    @property
    def number(self) -> float | int | None:
        if self.quoted or not _NUMBER.match(self.text):
            return None
        value = float(self.text)
        return int(value) if value.is_integer() and re.fullmatch(r"[+-]?\d+", self.text) else value

    @property
    def boolean(self) -> bool | None:
        if self.quoted:
            return None
        return {"true": True, "false": False}.get(self.text.lower())


@dataclass(frozen=True)
class Comparison:
    key: str
    op: str
    value: Value
    position: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    parts: tuple


# --- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "op", "(", ")", "end"
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise SearchError(f"the query is longer than {MAX_LENGTH} characters; shorten it", MAX_LENGTH)
    tokens, i = [], 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(Token(char, char, i))
            i += 1
        elif char in "\"'":
            end, out = i + 1, []
            while end < len(text) and text[end] != char:
                if text[end] == "\\" and end + 1 < len(text):
                    end += 1
                out.append(text[end])
                end += 1
            if end >= len(text):
                raise SearchError(f"the string opened with {char} is not closed", i)
            tokens.append(Token("string", "".join(out), i))
            i = end + 1
        elif char in "=!<>~":
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise SearchError(f"unknown operator {text[i:i + 2]!r}; use one of {' '.join(OPERATORS)}", i)
            tokens.append(Token("op", op, i))
            i += len(op)
        else:
            match = _BARE.match(text, i)
            tokens.append(Token("word", match.group(), i))
            i = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.at = 0
        self.comparisons = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def query(self):
        if self.peek().kind == "end":
            raise SearchError("the query is empty; expected a comparison such as best_val_acc > 0.9", 0)
        tree = self.or_(0)
        token = self.peek()
        if token.kind != "end":
            after = self.tokens[self.at - 1].text or self.tokens[self.at - 1].kind
            raise SearchError(f"expected 'and', 'or' or the end of the query after {after!r}, not "
                              f"{token.text!r}", token.position)
        return tree

    def or_(self, depth):
        parts = [self.and_(depth)]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_(depth))
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_(self, depth):
        parts = [self.primary(depth)]
        while self.is_word("and"):
            self.take()
            parts.append(self.primary(depth))
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def primary(self, depth):
        token = self.peek()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise SearchError(f"parentheses nest deeper than {MAX_DEPTH}; flatten the query", token.position)
            self.take()
            tree = self.or_(depth + 1)
            close = self.peek()
            if close.kind != ")":
                raise SearchError(f"expected ')' to close the '(' at position {token.position}", close.position)
            self.take()
            return tree
        return self.comparison()

    def comparison(self) -> Comparison:
        key = self.take()
        if key.kind != "word" or key.text.lower() in ("and", "or"):
            shown = "the end of the query" if key.kind == "end" else repr(key.text)
            raise SearchError(f"expected a key ({KEYS_HELP}), not {shown}", key.position)
        _check_key(key)
        op = self.take()
        if op.kind != "op":
            raise SearchError(f"expected an operator after {key.text!r}", op.position)
        value = self.take()
        if value.kind not in ("word", "string"):
            raise SearchError(f"expected a value after {key.text} {op.text}", value.position)
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise SearchError(f"the query has more than {MAX_COMPARISONS} comparisons", key.position)
        return Comparison(key.text, op.text, Value(value.text, value.kind == "string", value.position), key.position)


def _check_key(key: Token) -> None:
    name = key.text
    if name in RESULTS or name in OBJECTS:
        return
    if name.startswith("config."):
        parts = name.split(".")[1:]
        for part in parts:
            if not _KEY_PART.match(part):
                raise SearchError(f"{name!r} is not a config key: use config.<name>, dotted for nested keys",
                                  key.position)
        if len(parts) > 8:
            raise SearchError(f"{name!r} nests deeper than 8 keys", key.position)
        return
    raise SearchError(f"unknown key {name!r}; use {KEYS_HELP}", key.position)


def parse(text: str):
    """The tree of a query, or SearchError."""
    return _Parser(text).query()


# --- values ---------------------------------------------------------------------------------------

def parse_date(value: Value) -> dt.datetime | dt.date:
    """An ISO date (2026-01-31) or date and time (2026-01-31T12:00, UTC unless it names its zone)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.text):
            return dt.date.fromisoformat(value.text)
        moment = dt.datetime.fromisoformat(value.text)
    except ValueError:
        raise SearchError(f"{value.text!r} is not a date; write 2026-01-31 or 2026-01-31T12:00",
                          value.position) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def config_value(value: Value):
    """What a config value compares with: a number, a boolean, null, or text ("quoted" is always text)."""
    if value.quoted:
        return value.text
    if value.number is not None:
        return value.number
    if value.boolean is not None:
        return value.boolean
    if value.text.lower() == "null":
        return None
    return value.text


# --- compiling to a Q over runs (the only part that knows Django) ------------------------------------


LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
ORDER_LOOKUPS = {"<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual, "=": Exact}
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
JSON_NUMBER_TYPES = ("number", "integer", "real")  # PostgreSQL's jsonb_typeof; SQLite's json_type


class JSONTypeOf(Func):
    """The JSON type of the value at a key path of a JSON column: a comparison of numbers must only see
    numbers (jsonb orders every string below every number, and SQLite every text above), so a number
    comparison is guarded by this."""

    output_field = CharField()

    def __init__(self, column: str, path: tuple[str, ...]):
        super().__init__(F(column))
        self.path = tuple(path)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"JSON_TYPE({sql}, %s)", [*params, "$" + "".join(f'."{p}"' for p in self.path)]

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # Key parts are [A-Za-z0-9_-] (search._KEY_PART), so the array literal needs no quoting.
        return f"jsonb_typeof({sql} #> %s::text[])", [*params, "{" + ",".join(self.path) + "}"]


def duration_expression():
    return ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


def _fail(comparison: Comparison, sentence: str):
    raise SearchError(sentence, comparison.value.position)


def _number(comparison: Comparison) -> float | int:
    number = comparison.value.number
    if number is None:
        _fail(comparison, f"{comparison.key} compares with a number, not {comparison.value.text!r}")
    return number


def _negate_if(comparison: Comparison, q: Q) -> Q:
    return ~q if comparison.op == "!=" else q


def _config(c: Comparison) -> Q:
    path = tuple(c.key.split(".")[1:])
    lookup = "config__" + "__".join(path)
    present = Q(**{f"{lookup}__isnull": False})
    if c.op == "~":
        return Q(**{f"{lookup}__icontains": c.value.text})
    value = config_value(c.value)
    if c.op in ("=", "!="):
        equal = Q(**{f"{lookup}__exact": value})
        if connection.features.supports_json_field_contains and value is not None:
            nested = value  # containment: what PostgreSQL's GIN index on config answers
            for part in reversed(path):
                nested = {part: nested}
            equal = Q(config__contains=nested)
        return present & ~equal if c.op == "!=" else equal
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        _fail(c, f"{c.op} compares numbers; {c.value.text!r} is not one")
    is_number = Q(In(JSONTypeOf("config", path), list(JSON_NUMBER_TYPES)))
    return is_number & Q(**{f"{lookup}__{LOOKUPS[c.op]}": value})


def _result(c: Comparison) -> Q:
    kind = RESULTS[c.key]
    if kind == "number":
        if c.op == "~":
            _fail(c, f"{c.key} compares with = != < <= > >=, not ~")
        number = _number(c)
        if c.key == "duration":
            target = V(dt.timedelta(seconds=number), output_field=DurationField())
            lookup = ORDER_LOOKUPS["=" if c.op == "!=" else c.op]
            return _negate_if(c, Q(lookup(duration_expression(), target))) & Q(finished_at__isnull=False,
                                                                                  started_at__isnull=False)
        q = Q(**{f"{c.key}__{LOOKUPS['=' if c.op == '!=' else c.op]}": number})
        return _negate_if(c, q) & Q(**{f"{c.key}__isnull": False})
    if kind == "text":  # status
        if c.op == "~":
            return Q(status__icontains=c.value.text)
        if c.op not in ("=", "!="):
            _fail(c, "status compares with = or !=")
        if c.value.text.lower() not in STATUSES:
            _fail(c, f"{c.value.text!r} is not a status; use one of {', '.join(STATUSES)}")
        return _negate_if(c, Q(status=c.value.text.lower()))
    # created
    if c.op == "~":
        _fail(c, "created compares with a date using = != < <= > >=")
    moment = parse_date(c.value)
    field = "created" if isinstance(moment, dt.datetime) else "created__date"
    return _negate_if(c, Q(**{f"{field}__{LOOKUPS['=' if c.op == '!=' else c.op]}": moment}))


def _named(c: Comparison, prefix: str, name_field: str) -> Q:
    """dataset, experiment, sweep, by: an id (a number) or a name; ~ is "the name contains"."""
    if c.op == "~":
        return Q(**{f"{prefix}__{name_field}__icontains": c.value.text})
    if c.op not in ("=", "!="):
        _fail(c, f"{c.key} compares with = != or ~")
    if prefix != "created_by" and c.value.number is not None and isinstance(c.value.number, int):
        return _negate_if(c, Q(**{f"{prefix}_id": c.value.number}))
    return _negate_if(c, Q(**{f"{prefix}__{name_field}__iexact": c.value.text}))


def _tag(c: Comparison, json_contains: bool) -> Q:
    if c.op == "~":
        return Q(tags__icontains=c.value.text)
    if c.op not in ("=", "!="):
        _fail(c, "tag compares with = != or ~")
    q = Q(tags__contains=[c.value.text]) if json_contains else Q(tags__icontains=f'"{c.value.text}"')
    return _negate_if(c, q)


def _comparison(c: Comparison, json_contains: bool) -> Q:
    if c.key.startswith("config."):
        return _config(c)
    if c.key in RESULTS:
        return _result(c)
    if c.key == "dataset.version":
        if c.op == "~":
            _fail(c, "dataset.version compares with a number")
        return _negate_if(c, Q(**{f"dataset__version__{LOOKUPS['=' if c.op == '!=' else c.op]}": _number(c)}))
    if c.key == "tag":
        return _tag(c, json_contains)
    prefix, name_field = {"dataset": ("dataset", "name"), "experiment": ("experiment", "name"),
                          "sweep": ("sweep", "name"), "by": ("created_by", "username")}[c.key]
    return _named(c, prefix, name_field)


def compile_tree(tree, *, json_contains: bool = True) -> Q:
    if isinstance(tree, Comparison):
        return _comparison(tree, json_contains)
    parts = [compile_tree(part, json_contains=json_contains) for part in tree.parts]
    q = parts[0]
    for part in parts[1:]:
        q = (q & part) if tree.op == "and" else (q | part)
    return q


def search_q(text: str) -> Q:
    """The Q of a query's runs (SearchError for a bad query). Apply it to a team-scoped queryset only."""
    return compile_tree(parse(text), json_contains=connection.features.supports_json_field_contains)
