"""What a drawing or tracing child taken over by a crafted file could send back to the worker."""

from __future__ import annotations

import os


class Planted:
    """A message part whose pickle makes whoever reads it create the directory `path`: proof, in a test,
    that reading a child's message ran code chosen by the child."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (self.path,))
