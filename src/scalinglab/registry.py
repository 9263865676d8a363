"""A small name -> builder registry shared by models and simulators.

Modelled on torchvision's ``models/_api.py``: decorate a builder with ``@REGISTRY.register()``,
look it up with ``REGISTRY.get(name, **config)`` and list the keys with ``REGISTRY.names()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class UnknownNameError(ValueError):
    """Raised when a registry key does not exist; the message lists the valid keys."""


class UnknownConfigKeyError(ValueError):
    """Raised when a builder is called with a configuration key it does not accept."""


class Registry:
    """Maps snake_case names to builder callables.

    Args:
        kind: what the registry holds ("model", "simulator"), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            key = name or fn.__name__
            if key in self._builders:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._builders[key] = fn
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._builders)

    def builder(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}' (known: {', '.join(self.names())})"
            ) from None

    def accepted_keys(self, name: str) -> list[str]:
        """Configuration keys the builder accepts (its keyword parameters)."""
        params = inspect.signature(self.builder(name)).parameters.values()
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def get(self, name: str, **config: Any) -> Any:
        fn = self.builder(name)
        accepted = self.accepted_keys(name)
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
        if not takes_kwargs:
            unknown = sorted(set(config) - set(accepted))
            if unknown:
                raise UnknownConfigKeyError(
                    f"{self.kind} '{name}' does not accept config key(s) {', '.join(unknown)} "
                    f"(accepted: {', '.join(accepted)})"
                )
        return fn(**config)
