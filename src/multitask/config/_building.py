"""What the sections share when they build: a layer too large to allocate is a config error."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from multitask.errors import ConfigError

_Built = TypeVar("_Built")


def refuse_huge_layers(build: Callable[..., _Built]) -> Callable[..., _Built]:
    """A layer too large to allocate (``hidden: [200000, 200000]``) is a config error naming the size, not a
    traceback from the allocator."""

    @functools.wraps(build)
    def checked(*args: Any, **kwargs: Any) -> _Built:
        try:
            return build(*args, **kwargs)
        except (RuntimeError, MemoryError, OverflowError, TypeError) as error:
            text = str(error)
            wanted = re.search(r"allocate (\d+) bytes", text)
            huge = wanted is not None or isinstance(error, MemoryError | OverflowError) or "Overflow" in text
            if not huge or (isinstance(error, TypeError) and "Overflow" not in text):
                raise
            size = (
                f"{int(wanted.group(1)):,} bytes ({int(wanted.group(1)) / 2**30:,.0f} GiB)"
                if wanted is not None
                else "more elements than a tensor can hold"
            )
            raise ConfigError(
                f"model: a layer asks for {size}, more than this machine can allocate: make the layer sizes "
                "(model.encoder hidden/channels, expert, private) smaller"
            ) from None

    return checked
