"""Templates compiled once per test process instead of once per test.

Every test builds its own application, and Jinja keeps compiled templates per application: without help,
each test would lex, parse and compile again every page it renders (about 15 ms a page, a large part of a
short test's time). This cache hands a later application the code an earlier one compiled from the same
source; Jinja checks the source's checksum first, so an edited template is compiled afresh. All test
applications share one Jinja configuration (autoescaping, the i18n extension), which is what makes their
compiled code interchangeable.
"""

from __future__ import annotations

from types import CodeType
from typing import Any

from jinja2.bccache import Bucket, BytecodeCache


class SharedTemplateCode(BytecodeCache):
    """Compiled template code kept in memory, keyed by template and checked against its source."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        kept = self._code.get(bucket.key)
        if kept is not None and kept[0] == bucket.checksum:
            bucket.code = kept[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self._code[bucket.key] = (bucket.checksum, bucket.code)


COMPILED = SharedTemplateCode()


def share_compiled_templates(app: Any) -> Any:
    """Let `app` reuse the templates this process has compiled already; returns `app`."""
    app.jinja_env.bytecode_cache = COMPILED
    return app
