"""Pieces the generators share: a lazily resolved, picklable model reference; validation helpers.

A generator is a small object with ``kind``, ``config`` (a frozen dataclass), ``items(problems)``,
``key(item)``, ``__call__(item) -> record`` (one JSON-serialisable dict per item; a record may
carry ``"drop": reason`` when it yields no training example) and ``labels()`` (model names for
the manifest). The same object runs in-process (``sc_chains.runner``) or on Ray workers, so it
holds model *specs* (:class:`ModelRef`), never live clients.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from adapters.base import LogprobModel
from graphs import validate
from graphs.vocab import add_cost, zero_cost

__all__ = ["ModelRef", "PerProblem", "check_int", "check_number", "sum_usage"]

_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], LogprobModel] = {}
_CACHE_LOCK = threading.Lock()


class ModelRef:
    """A model spec (``"hf:..."``, ``"openai:..."``) or model, resolved on first use.

    String specs resolve once per process (a cache shared by every ``ModelRef`` with the same
    spec and options), so Ray workers load a model once, not once per task. Pickles as its spec.
    """

    def __init__(self, spec: Any, **options: Any) -> None:
        if isinstance(spec, ModelRef):
            spec, options = spec.spec, {**spec.options, **options}
        self.spec = spec
        self.options = dict(options)
        self._model: LogprobModel | None = None

    @property
    def label(self) -> str:
        """The spec string, or the model's name."""
        return self.spec if isinstance(self.spec, str) else str(getattr(self.spec, "name", type(self.spec).__name__))

    def get(self) -> LogprobModel:
        """The resolved :class:`LogprobModel`."""
        if self._model is not None:
            return self._model
        from adapters.specs import resolve_model

        if not isinstance(self.spec, str):
            self._model = resolve_model(self.spec, **self.options)
            return self._model
        key = (self.spec, tuple(sorted(self.options.items())))
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = resolve_model(self.spec, **self.options)
            self._model = _CACHE[key]
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self.options, self._model = state["spec"], state["options"], None

    def __repr__(self) -> str:
        return f"ModelRef({self.label!r})"


class PerProblem:
    """Generator mixin: one model (``self.model``, a :class:`ModelRef`), one item per problem keyed by its id."""

    model: ModelRef

    def labels(self) -> dict[str, Any]:
        """Model names for the manifest."""
        return {"model": self.model.label}

    def items(self, problems: list[Any]) -> list[Any]:
        return list(problems)

    @staticmethod
    def key(item: Any) -> str:
        return item.id


def check_int(name: str, value: Any, low: int) -> None:
    """Raise :class:`InvalidRequestError` unless ``value`` is an int >= ``low`` (the one
    validation module, :mod:`graphs.validate`)."""
    validate.check_int(name, value, minimum=low)


def check_number(name: str, value: Any, low: float, high: float) -> None:
    """Raise :class:`InvalidRequestError` unless ``low <= value <= high`` (:mod:`graphs.validate`)."""
    validate.check_number(name, value, low=low, high=high)


def sum_usage(*usages: Mapping[str, int] | None) -> dict[str, int]:
    """Counter-wise sum of usage dicts (missing keys count 0): :func:`graphs.vocab.add_cost`."""
    total: dict[str, int] = dict(zero_cost())
    for u in usages:
        total = dict(add_cost(total, u))
    return total
