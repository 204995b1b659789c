"""Name → class registries, so that configs choose methods by name without string ``if`` chains (as timm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from multitask.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one family (``kind``), each under a snake_case name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``@registry.register("ew")``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._classes[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; `UnknownNameError` lists the allowed names."""
        if name not in self._classes:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}")
        return self._classes[name]

    def create(self, name: str, **kwargs: Any) -> T:
        """An instance of the class registered as ``name``, built with ``kwargs``."""
        cls = self.get(name)
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise ConfigError(f"{self.kind} {name!r}: {error}") from error
