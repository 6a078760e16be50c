"""URL builders generated once per test process instead of once per test.

Werkzeug turns every route of a new application into two small URL-building functions, through Python's
`ast` and `compile`: about 45 ms for vault's two hundred routes, paid again by every test, since every test
builds its own application. A builder is a pure function of its rule's text and parsed parts (it reaches
the rule's converters through `self` when called), so the same rule in a later application can take the
function generated for the first. Rules with defaults are left alone: their defaults are folded into the
function. Should Werkzeug change these internals, the patch stays out and the suite is just slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_BUILDERS: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def build_url_builders_once() -> None:
    """Install the memo on Werkzeug's `Rule` (once; calling again changes nothing)."""
    generate = getattr(Rule, "_compile_builder", None)
    if generate is None or getattr(generate, "shared", False):
        return

    def compile_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        trace = getattr(self, "_trace", None)
        if self.defaults or trace is None:
            return generate(self, append_unknown)
        key = (self.rule, tuple(trace), append_unknown)
        builder = _BUILDERS.get(key)
        if builder is None:
            builder = _BUILDERS[key] = generate(self, append_unknown)
        return builder

    compile_builder.shared = True  # type: ignore[attr-defined]
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]
