"""The segment language (issue #15): parser with error positions, checks
(unknown trait or event, a rule that can never be true) and the evaluator.

Grammar (keywords case-insensitive)::

    rule      := or
    or        := and ("or" and)*
    and       := unary ("and" unary)*
    unary     := "not" unary | "(" rule ")" | predicate
    predicate := "consent" "(" STRING ")"
               | agg "(" EVENT ["where" FIELD "=" STRING] "within" DURATION ")" CMP NUMBER
               | TRAIT CMP (NUMBER | STRING)
               | TRAIT "in" "(" STRING ("," STRING)* ")"
    agg       := "count" | "sum"
    CMP       := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
    DURATION  := NUMBER ("d" | "h")          e.g. 30d, 12h

Example: ``count(order_completed where category = "shoes" within 30d) >= 2
and count(order_completed where category = "shoes" within 14d) = 0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personalization.domain.traits import (
    DAY,
    KNOWN_EVENTS,
    ORDER,
    PREDICTED_TRAITS,
    WHERE_FIELDS,
    CustomerState,
    Seen,
    TraitConfig,
    traits_an_event_changes,
)


class RuleError(ValueError):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(position, message)
        self.position = position
        self.message = message

    def __str__(self) -> str:
        return f"at character {self.position + 1}: {self.message}"


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)(?P<unit>[dh])?\b"
    r'|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<op>==|!=|<=|>=|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # num, dur, str, op, word, end
    text: str
    pos: int
    value: Any = None


def tokenize(src: str) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while True:
        while i < len(src) and src[i].isspace():
            i += 1
        if i >= len(src):
            out.append(Tok("end", "", i))
            return out
        m = _TOKEN.match(src, i)
        if m is None or m.end() == i:
            raise RuleError(i, f"unexpected character {src[i]!r}")
        group = "num" if m.group("num") is not None else (m.lastgroup or 0)
        start = m.start(group)
        if m.group("num") is not None:
            if m.group("unit"):
                n = float(m.group("num"))
                out.append(
                    Tok(
                        "dur",
                        m.group(0).strip(),
                        start,
                        n * (DAY if m.group("unit") == "d" else 3600),
                    )
                )
            else:
                out.append(Tok("num", m.group("num"), start, float(m.group("num"))))
        elif m.group("str") is not None:
            raw = m.group("str")
            out.append(Tok("str", raw, start, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif m.group("op") is not None:
            out.append(Tok("op", m.group("op"), start))
        else:
            out.append(Tok("word", m.group("word"), start, m.group("word").lower()))
        i = m.end()


# -- AST -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Any


@dataclass(frozen=True, slots=True)
class Consent:
    purpose: str


@dataclass(frozen=True, slots=True)
class Agg:
    fn: str  # count | sum
    event: str
    where: tuple[str, str] | None
    window_s: float
    op: str
    value: float

    @property
    def key(self) -> str:
        w = f" where {self.where[0]}={self.where[1]}" if self.where else ""
        return f"{self.fn}({self.event}{w} within {self.window_s})"


@dataclass(frozen=True, slots=True)
class Cmp:
    trait: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class In:
    trait: str
    values: frozenset[str]


_CMP = {"=", "==", "!=", "<", "<=", ">", ">="}
KEYWORDS = {"and", "or", "not", "in", "within", "where", "count", "sum", "consent"}


class _Parser:
    def __init__(
        self, src: str, traits: Mapping[str, str], max_window_s: float, events: frozenset[str]
    ) -> None:
        self.toks = tokenize(src)
        self.i = 0
        self.traits = traits
        self.max_window_s = max_window_s
        self.events = events

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_word(self, w: str) -> bool:
        return self.tok.kind == "word" and self.tok.value == w

    def expect_op(self, op: str) -> Tok:
        if self.tok.kind != "op" or self.tok.text != op:
            raise RuleError(self.tok.pos, f"expected {op!r}, found {self._found()}")
        return self.next()

    def _found(self) -> str:
        return "end of rule" if self.tok.kind == "end" else repr(self.tok.text)

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise RuleError(0, "empty rule")
        node = self.or_()
        if self.tok.kind != "end":
            raise RuleError(
                self.tok.pos, f"expected 'and', 'or' or end of rule, found {self._found()}"
            )
        return node

    def or_(self) -> Any:
        parts = [self.and_()]
        while self.is_word("or"):
            self.next()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Any:
        parts = [self.unary()]
        while self.is_word("and"):
            self.next()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Any:
        if self.is_word("not"):
            self.next()
            return Not(self.unary())
        if self.tok.kind == "op" and self.tok.text == "(":
            self.next()
            node = self.or_()
            self.expect_op(")")
            return node
        return self.predicate()

    def cmp_op(self) -> str:
        if self.tok.kind != "op" or self.tok.text not in _CMP:
            raise RuleError(
                self.tok.pos, f"expected a comparison (=, !=, <, <=, >, >=), found {self._found()}"
            )
        return "=" if self.next().text == "==" else self.toks[self.i - 1].text

    def number(self) -> float:
        if self.tok.kind != "num":
            raise RuleError(self.tok.pos, f"expected a number, found {self._found()}")
        return float(self.next().value)

    def string(self) -> str:
        if self.tok.kind != "str":
            raise RuleError(self.tok.pos, f'expected a "quoted string", found {self._found()}')
        return str(self.next().value)

    def predicate(self) -> Any:
        t = self.tok
        if t.kind != "word":
            raise RuleError(
                t.pos,
                f"expected a trait, count(...), sum(...) or consent(...), found {self._found()}",
            )
        if t.value == "consent":
            self.next()
            self.expect_op("(")
            purpose = self.string()
            if not purpose.strip():
                raise RuleError(self.toks[self.i - 1].pos, "consent purpose is empty")
            self.expect_op(")")
            return Consent(purpose.strip())
        if t.value in ("count", "sum"):
            self.next()
            self.expect_op("(")
            et = self.tok
            if et.kind != "word":
                raise RuleError(et.pos, f"expected an event name, found {self._found()}")
            name = str(self.next().value)
            if name not in self.events:
                raise RuleError(et.pos, f"unknown event {et.text!r}")
            where = None
            if self.is_word("where"):
                self.next()
                ft = self.tok
                if ft.kind != "word" or ft.value not in WHERE_FIELDS:
                    raise RuleError(
                        ft.pos,
                        f"expected one of {', '.join(WHERE_FIELDS)} after 'where', found {self._found()}",
                    )
                self.next()
                self.expect_op("=") if self.tok.text == "=" else self.expect_op("==")
                where = (str(ft.value), self.string())
            if not self.is_word("within"):
                raise RuleError(
                    self.tok.pos,
                    f"expected 'within' and a window such as 30d, found {self._found()}",
                )
            self.next()
            dt = self.tok
            if dt.kind != "dur":
                raise RuleError(
                    dt.pos, f"expected a window such as 30d or 12h, found {self._found()}"
                )
            self.next()
            if dt.value <= 0:
                raise RuleError(dt.pos, "window must be longer than zero")
            if dt.value > self.max_window_s + 1e-9:
                raise RuleError(
                    dt.pos, f"window longer than the {self.max_window_s / DAY:g} days kept"
                )
            self.expect_op(")")
            op = self.cmp_op()
            nt = self.tok
            v = self.number()
            if t.value == "count" and not float(v).is_integer():
                raise RuleError(nt.pos, "a count is compared with a whole number")
            return Agg(str(t.value), name, where, float(dt.value), op, v)
        if t.value in KEYWORDS:
            raise RuleError(t.pos, f"expected a condition, found keyword {t.text!r}")
        name = str(t.value)
        if name not in self.traits:
            raise RuleError(t.pos, f"unknown trait {t.text!r}")
        self.next()
        kind = self.traits[name]
        if self.is_word("in"):
            self.next()
            self.expect_op("(")
            values = [self.string()]
            while self.tok.kind == "op" and self.tok.text == ",":
                self.next()
                values.append(self.string())
            self.expect_op(")")
            if kind != "string":
                raise RuleError(t.pos, f"trait {t.text!r} is a number: 'in' takes a string trait")
            return In(name, frozenset(values))
        op = self.cmp_op()
        vt = self.tok
        if kind == "number":
            return Cmp(name, op, self.number())
        if op not in ("=", "!="):
            raise RuleError(vt.pos, f"trait {t.text!r} is a string: only = and != compare it")
        return Cmp(name, op, self.string())


def _interval(op: str, v: float) -> tuple[float, float, bool, bool]:
    """(low, high, low_open, high_open) where a comparison holds."""
    inf = math.inf
    return {
        "=": (v, v, False, False),
        "<": (-inf, v, True, True),
        "<=": (-inf, v, True, False),
        ">": (v, inf, True, True),
        ">=": (v, inf, False, True),
    }[op]


def _never_true(node: Any) -> bool:
    """True when a conjunction restricts one quantity to an empty range
    (counts and sums are never negative)."""
    if isinstance(node, Or):
        return all(_never_true(p) for p in node.parts)
    parts = node.parts if isinstance(node, And) else (node,)
    if isinstance(node, And) and any(_never_true(p) for p in parts if isinstance(p, Or)):
        return True
    ranges: dict[str, tuple[float, float, bool, bool]] = {}
    strings: dict[str, set[str]] = {}
    for p in parts:
        if isinstance(p, Agg | Cmp) and p.op != "!=" and isinstance(p.value, float):
            key = p.key if isinstance(p, Agg) else p.trait
            lo, hi, lo_open, hi_open = _interval(p.op, p.value)
            nonneg = ("lifetime_", "days_since", "events_", "orders_", "views_", "cart_adds_")
            if (isinstance(p, Agg) or key.startswith(nonneg)) and (hi < 0 or (hi == 0 and hi_open)):
                return True  # never negative
            old = ranges.get(key)
            if old is not None:
                # Intersect.
                if lo > old[0] or (lo == old[0] and lo_open):
                    nlo, nlo_open = lo, lo_open
                else:
                    nlo, nlo_open = old[0], old[2]
                if hi < old[1] or (hi == old[1] and hi_open):
                    nhi, nhi_open = hi, hi_open
                else:
                    nhi, nhi_open = old[1], old[3]
                lo, hi, lo_open, hi_open = nlo, nhi, nlo_open, nhi_open
            if lo > hi or (lo == hi and (lo_open or hi_open)):
                return True
            ranges[key] = (lo, hi, lo_open, hi_open)
        elif isinstance(p, Cmp) and p.op == "=" and isinstance(p.value, str):
            s = strings.setdefault(p.trait, {p.value})
            s &= {p.value}
            if not s:
                return True
        elif isinstance(p, In):
            s = strings.setdefault(p.trait, set(p.values))
            s &= set(p.values)
            if not s:
                return True
    return False


Evaluator = Callable[
    [CustomerState, Mapping[str, Any], float, Callable[[str], bool], dict[Any, float]], bool
]


@dataclass(frozen=True, slots=True)
class Rule:
    source: str
    root: Any
    # Derived once at construction (the consumer evaluates every rule for
    # every changed customer): the purposes read, whether time alone can
    # change the result, and the tree compiled into nested closures.
    _needs: frozenset[str] = field(default=frozenset(), init=False, compare=False, repr=False)
    _time_based: bool = field(default=False, init=False, compare=False, repr=False)
    _fn: Evaluator | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_needs", frozenset(_needs(self.root)))
        object.__setattr__(self, "_time_based", _time_based(self.root))
        object.__setattr__(self, "_fn", _compile(self.root))

    def needs(self) -> frozenset[str]:
        """Consent purposes the rule reads (so it is not computed without them)."""
        return self._needs

    def time_based(self) -> bool:
        """True when membership can change with time alone (windows, days_since)."""
        return self._time_based

    def evaluate(
        self,
        state: CustomerState,
        traits: Mapping[str, Any],
        now: float,
        consent: Callable[[str], bool],
        memo: dict[Any, float] | None = None,
    ) -> bool:
        """``memo`` caches window aggregates across the rules evaluated for
        one customer at one time (many segments share an aggregate); pass
        the same dict for all of them, a new one per customer."""
        assert self._fn is not None
        return self._fn(state, traits, now, consent, {} if memo is None else memo)


def _children(n: Any) -> tuple[Any, ...]:
    if isinstance(n, Not):
        return (n.part,)
    return tuple(getattr(n, "parts", ()))


def _needs(n: Any) -> set[str]:
    out = {n.purpose} if isinstance(n, Consent) else set()
    for c in _children(n):
        out |= _needs(c)
    return out


def _time_based(n: Any) -> bool:
    if isinstance(n, Agg) or (
        isinstance(n, Cmp | In)
        and (n.trait.startswith("days_since") or n.trait.endswith("d") or n.trait == "lifecycle")
    ):
        return True
    return any(_time_based(c) for c in _children(n))


def _compile(root: Any) -> Evaluator:
    """The tree as one Python expression compiled once: same results as
    :func:`_eval`, with the language's and/or/not as Python's (short
    circuit included) and no per-node dispatch. Only numbers, operators and
    names made here enter the source; every string of the rule is passed in
    as a constant, never spliced into the code."""
    consts: list[Any] = []

    def const(v: Any) -> str:
        consts.append(v)
        return f"K[{len(consts) - 1}]"

    def gen(n: Any) -> str:
        if isinstance(n, And):
            return "(" + " and ".join(gen(p) for p in n.parts) + ")"
        if isinstance(n, Or):
            return "(" + " or ".join(gen(p) for p in n.parts) + ")"
        if isinstance(n, Not):
            return f"(not {gen(n.part)})"
        if isinstance(n, Consent):
            return f"bool(c({const(n.purpose)}))"
        if isinstance(n, Agg):
            k = const((n.fn, n.event, n.where, n.window_s))
            return f"(agg(s, now, m, {k}) {_PY_OP[n.op]} {float(n.value)!r})"
        if isinstance(n, In):
            return f"(t.get({const(n.trait)}) in {const(n.values)})"
        assert isinstance(n, Cmp)
        default = 0.0 if isinstance(n.value, float) else ""
        return f"(t.get({const(n.trait)}, {const(default)}) {_PY_OP[n.op]} {const(n.value)})"

    body = gen(root)
    # Source built above from fixed fragments only (strings are constants).
    fn = eval(
        compile(f"lambda s, t, now, c, m: bool({body})", "<segment rule>", "eval"),
        {"K": tuple(consts), "agg": _agg, "bool": bool, "__builtins__": {}},
    )
    return fn  # type: ignore[no-any-return]


_PY_OP = {"=": "==", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _agg(s: CustomerState, now: float, m: dict[Any, float], key: Any) -> float:
    v = m.get(key)
    if v is None:
        fn, event, where, window = key
        v = m[key] = (
            s.count(event, window, now, where)
            if fn == "count"
            else s.total(event, window, now, where)
        )
    return v


def _cmp(a: Any, op: str, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _eval(
    n: Any,
    state: CustomerState,
    traits: Mapping[str, Any],
    now: float,
    consent: Callable[[str], bool],
) -> bool:
    if isinstance(n, And):
        return all(_eval(p, state, traits, now, consent) for p in n.parts)
    if isinstance(n, Or):
        return any(_eval(p, state, traits, now, consent) for p in n.parts)
    if isinstance(n, Not):
        return not _eval(n.part, state, traits, now, consent)
    if isinstance(n, Consent):
        return consent(n.purpose)
    if isinstance(n, Agg):
        v: float = (
            state.count(n.event, n.window_s, now, n.where)
            if n.fn == "count"
            else state.total(n.event, n.window_s, now, n.where)
        )
        return _cmp(v, n.op, n.value)
    if isinstance(n, In):
        return traits.get(n.trait) in n.values
    assert isinstance(n, Cmp)
    return _cmp(traits.get(n.trait, 0.0 if isinstance(n.value, float) else ""), n.op, n.value)


def parse(
    src: str,
    traits: Mapping[str, str],
    *,
    max_window_s: float = 90 * DAY,
    events: frozenset[str] = KNOWN_EVENTS,
) -> Rule:
    """Parses and checks a rule; raises RuleError with the position."""
    if len(src) > 4000:
        raise RuleError(4000, "rule longer than 4000 characters")
    root = _Parser(src, traits, max_window_s, events).parse()
    if _never_true(root):
        raise RuleError(0, "the rule can never be true")
    return Rule(src, root)


# -- all segments at once ------------------------------------------------------------
class _Plan:
    """A subset of the rules (indices into the set) compiled into one
    expression that returns their results as a tuple, with the window
    aggregates they read computed in one newest-first pass over the recent
    events (grouped by event name, stopping at the longest window)."""

    __slots__ = ("_by_name", "_fn", "_maxw", "_n", "_orders", "idx", "sids")

    def __init__(self, idx: tuple[int, ...], rules: Sequence[tuple[str, Rule]]) -> None:
        self.idx = idx
        self.sids: frozenset[str] = frozenset(rules[i][0] for i in idx)
        slots: dict[tuple[str, str, tuple[str, str] | None, float], int] = {}
        consts: list[Any] = []

        def const(v: Any) -> str:
            consts.append(v)
            return f"K[{len(consts) - 1}]"

        def gen(n: Any) -> str:
            if isinstance(n, And):
                return "(" + " and ".join(gen(p) for p in n.parts) + ")"
            if isinstance(n, Or):
                return "(" + " or ".join(gen(p) for p in n.parts) + ")"
            if isinstance(n, Not):
                return f"(not {gen(n.part)})"
            if isinstance(n, Consent):
                return f"bool(c({const(n.purpose)}))"
            if isinstance(n, Agg):
                i = slots.setdefault((n.fn, n.event, n.where, n.window_s), len(slots))
                return f"(A[{i}] {_PY_OP[n.op]} {float(n.value)!r})"
            if isinstance(n, In):
                return f"(t.get({const(n.trait)}) in {const(n.values)})"
            assert isinstance(n, Cmp)
            default = 0.0 if isinstance(n.value, float) else ""
            return f"(t.get({const(n.trait)}, {const(default)}) {_PY_OP[n.op]} {const(n.value)})"

        # Every leaf is a comparison or bool(consent), and and/or/not of
        # bools are bools: the tuple holds bools without a bool() per rule.
        body = ", ".join(gen(rules[i][1].root) for i in idx)
        # Source from fixed fragments only; every string of a rule is a constant.
        self._fn: Callable[..., tuple[bool, ...]] = eval(
            compile(f"lambda t, c, A: ({body}{',' if idx else ''})", "<segments>", "eval"),
            {"K": tuple(consts), "bool": bool, "__builtins__": {}},
        )
        self._n = len(slots)
        # Orders without a filter read the order list (as CustomerState.count
        # does); the rest read the recent events, grouped by event name.
        self._orders: list[tuple[int, bool, float]] = []
        by_name: dict[str, list[tuple[int, bool, str | None, str, float]]] = {}
        for (fn, event, where, window), i in slots.items():
            if event == ORDER and where is None:
                self._orders.append((i, fn == "count", window))
                continue
            wf, wv = where if where is not None else (None, "")
            by_name.setdefault(event, []).append((i, fn == "count", wf, wv, window))
        self._by_name = by_name
        self._maxw = max((w for *_, w in (x for v in by_name.values() for x in v)), default=0.0)

    def aggregates(self, s: CustomerState, now: float) -> list[float]:
        out: list[float] = [0.0] * self._n
        counted: dict[int, set[float]] = {}
        summed: dict[int, list[float]] = {}
        by_name = self._by_name
        if by_name:
            oldest = now - self._maxw
            for e in reversed(s.recent):  # oldest first in the list
                at = e.at
                if at > now:
                    continue
                if at <= oldest:
                    break
                for i, is_count, wf, wv, window in by_name.get(e.name, ()):
                    if at <= now - window or (wf is not None and getattr(e, wf) != wv):
                        continue
                    if is_count:
                        # Several products of one event count once.
                        counted.setdefault(i, set()).add(at)
                    else:
                        summed.setdefault(i, []).append(e.value)
            for i, ats in counted.items():
                out[i] = len(ats)
            for i, vals in summed.items():
                vals.reverse()  # summed oldest first, as CustomerState.total does
                out[i] = sum(vals)
        for i, is_count, window in self._orders:
            since = now - window
            if is_count:
                out[i] = sum(1 for at, _ in s.orders if since < at <= now)
            else:
                out[i] = sum(v for at, v in s.orders if since < at <= now)
        return out

    def run(
        self,
        state: CustomerState,
        traits: Mapping[str, Any],
        now: float,
        consent: Callable[[str], bool],
    ) -> tuple[bool, ...]:
        return self._fn(traits, consent, self.aggregates(state, now))


def _leaves(n: Any) -> list[Any]:
    kids = _children(n)
    return [x for c in kids for x in _leaves(c)] if kids else [n]


class RuleSet:
    """Every segment's rule evaluated together for one customer: the window
    aggregates all rules read are computed in one pass over the customer's
    recent events (newest first, stopping at the longest window), then one
    compiled expression gives every rule's result as a tuple. Same results as
    :meth:`Rule.evaluate` rule by rule (a unit test compares them on random
    states), without a call, a memo lookup and a scan per rule: the consumer
    evaluates all segments for every changed customer of every batch.

    The dependency index (ADR 0260): each rule's leaves name what can change
    them — a trait (changed by the event names ``traits_an_event_changes``
    lists, by every event, or by none: predictions), a window aggregate (its
    event name, and its ``where`` value), ``consent(...)`` (read on every
    evaluation). :meth:`changed_by` turns a customer's new events into a
    bit mask of the rules they can change, and :meth:`evaluate_changed`
    evaluates only those (one expression compiled per mask, cached)."""

    __slots__ = (
        "_any",
        "_by_mask",
        "_by_name",
        "_by_where",
        "_full",
        "_rules",
        "all",
        "ids",
        "known",
        "needs",
        "time_based",
    )

    #: Compiled subsets kept (distinct masks seen; the cache is emptied when full).
    MAX_PLANS = 4096

    def __init__(self, rules: Sequence[tuple[str, Rule]], cfg: TraitConfig | None = None) -> None:
        cfg = cfg or TraitConfig()
        self._rules = list(rules)
        self.ids: tuple[str, ...] = tuple(sid for sid, _ in rules)
        self.known: frozenset[str] = frozenset(self.ids)
        self.needs: tuple[frozenset[str], ...] = tuple(r.needs() for _, r in rules)
        self.time_based: tuple[bool, ...] = tuple(r.time_based() for _, r in rules)
        self.all = (1 << len(rules)) - 1
        self._full = _Plan(tuple(range(len(rules))), self._rules)
        self._by_mask: dict[int, _Plan] = {self.all: self._full}
        # What can change each rule's leaves, as bit masks of rules.
        names = set(KNOWN_EVENTS)
        every = traits_an_event_changes("", cfg)  # what any event changes
        by_trait = {n: traits_an_event_changes(n, cfg) for n in names}
        self._any = 0
        self._by_name: dict[str, int] = {}
        self._by_where: dict[str, dict[tuple[str, str], int]] = {}
        for k, (_, r) in enumerate(rules):
            bit = 1 << k
            for leaf in _leaves(r.root):
                if isinstance(leaf, Consent):
                    self._any |= bit  # consent is read fresh on every evaluation
                elif isinstance(leaf, Agg):
                    if leaf.where is None:
                        self._by_name[leaf.event] = self._by_name.get(leaf.event, 0) | bit
                    else:
                        w = self._by_where.setdefault(leaf.event, {})
                        w[leaf.where] = w.get(leaf.where, 0) | bit
                elif leaf.trait in PREDICTED_TRAITS:
                    continue  # no event changes it: the sweep re-reads it
                elif leaf.trait in every:
                    self._any |= bit
                else:
                    for n, changes in by_trait.items():
                        if leaf.trait in changes:
                            self._by_name[n] = self._by_name.get(n, 0) | bit

    def changed_by(self, seen: Sequence[Seen]) -> int:
        """The rules (bit k: ``ids[k]``) whose result the events in ``seen``
        can change at a fixed time."""
        mask = self._any
        by_name, by_where = self._by_name, self._by_where
        for s in seen:
            mask |= by_name.get(s.name, 0)
            w = by_where.get(s.name)
            if w:
                for (f, v), bits in w.items():
                    if getattr(s, f) == v:
                        mask |= bits
        return mask

    def evaluate(
        self,
        state: CustomerState,
        traits: Mapping[str, Any],
        now: float,
        consent: Callable[[str], bool],
    ) -> tuple[bool, ...]:
        """Every rule's result, in the order of ``ids``."""
        return self._full.run(state, traits, now, consent)

    def plan(self, mask: int) -> _Plan:
        """The compiled subset of the rules in ``mask`` (built once)."""
        p = self._by_mask.get(mask)
        if p is None:
            if len(self._by_mask) >= self.MAX_PLANS:
                self._by_mask = {self.all: self._full}
            idx = tuple(k for k in range(len(self.ids)) if mask >> k & 1)
            p = self._by_mask[mask] = _Plan(idx, self._rules)
        return p
