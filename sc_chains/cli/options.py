"""Argument checks the subcommands share, all run before any model loads.

- :func:`parse_sets` / :func:`validate_chain_options`: ``--set CHAIN.KEY=VALUE`` (``eval``) and
  ``--set KEY=VALUE`` (``run``) checked against the chain's config: an unknown key (with a
  "did you mean"), a value of the wrong type or out of range is an :class:`InvalidRequestError`
  naming the chain, the key, the value and the valid keys.
- :func:`check_numbers`: every numeric CLI argument against its bounds.
- :func:`check_spec`: a model spec's scheme (``hf:``/``openai:``) and shape.
- :func:`server_options`: ``--base-url`` and ``--timeout``, for ``openai:`` specs only.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from adapters.errors import InvalidRequestError, UnknownModelSpecError

__all__ = ["BASE_URL_HELP", "CHAIN_KEYS", "MODEL_HELP", "MODEL_OPTION_HELP", "SEED_MAX", "TIMEOUT_HELP", "check_numbers", "check_spec",
           "parse_model_options", "parse_run_sets", "parse_set_value", "parse_sets", "server_options", "validate_chain_options"]

MODEL_HELP = "model spec: hf:default, hf:tiny-random, hf:PATH_OR_ID, openai:MODEL (default: %(default)s)"
"""The ``--model`` help text of every subcommand."""
BASE_URL_HELP = "server /v1 root, for openai: specs"
"""The ``--base-url`` help text of every subcommand."""
MODEL_OPTION_HELP = ("adapter option, value as JSON (repeatable), e.g. dtype=bfloat16, max_batch_size=16, "
                     "device=cuda for hf: specs; timeout=60, text_scores=true for openai:")
"""The ``--model-option`` help text."""
TIMEOUT_HELP = "openai: specs: most seconds one model call may take, retries included (default: the adapter's)"
"""The ``--timeout`` help text of ``generate`` and ``run``."""


def server_options(model: Any, base_url: str | None, timeout: float | None) -> dict[str, Any]:
    """Adapter options from ``--base-url`` and ``--timeout`` (both for ``openai:`` specs only).
    ``--timeout`` becomes the adapter's whole-call ``deadline`` where it has one, else its
    per-attempt ``timeout``."""
    options: dict[str, Any] = {}
    remote = isinstance(model, str) and model.startswith("openai:")
    for flag, value in (("--base-url", base_url), ("--timeout", timeout)):
        if value is not None and not remote:
            raise InvalidRequestError(flag, value, f"{flag} only applies to openai: specs, not {model!r}")
    if base_url is not None:
        options["base_url"] = base_url
    if timeout is not None:
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidRequestError("--timeout", timeout, "pass a number of seconds > 0, e.g. 60")
        import inspect

        from adapters.openai_compat import OpenAIModel

        takes = inspect.signature(OpenAIModel.__init__).parameters
        options["deadline" if "deadline" in takes else "timeout"] = float(timeout)
    return options


def parse_set_value(text: str) -> Any:
    """A ``--set``/``--model-option`` value: JSON if it parses (``4``, ``true``, ``[1,2]``), else the bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_options(items: list[str]) -> dict[str, Any]:
    """``["dtype=bfloat16", "max_batch_size=16"]`` -> ``{"dtype": "bfloat16", "max_batch_size": 16}``."""
    out: dict[str, Any] = {}
    for item in items:
        m = re.fullmatch(r"(\w+)=(.*)", item)
        if not m:
            raise InvalidRequestError("--model-option", item, "write KEY=VALUE, e.g. dtype=bfloat16")
        out[m.group(1)] = parse_set_value(m.group(2))
    return out


def parse_sets(items: Iterable[str], chains: list[str]) -> dict[str, dict[str, Any]]:
    """``["leco.max_rethinks=1"]`` -> ``{"leco": {"max_rethinks": 1}}``, each key and value
    validated against the chain's config (:func:`validate_chain_options`)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        m = re.fullmatch(r"([\w+\-]+)\.(\w+)=(.*)", item, flags=re.S)
        if not m or m.group(1) not in chains:
            raise InvalidRequestError(
                "--set", item, f"write CHAIN.KEY=VALUE with CHAIN one of the chains run ({', '.join(chains)})")
        out.setdefault(m.group(1), {})[m.group(2)] = parse_set_value(m.group(3))
    for chain, opts in out.items():
        validate_chain_options(chain, opts)
    return out


def parse_run_sets(items: Iterable[str]) -> dict[str, Any]:
    """``sc-chains run CHAIN --set KEY=VALUE`` -> ``{KEY: VALUE}`` (values as JSON); the caller
    checks them with :func:`validate_chain_options`, as ``eval --set`` is checked."""
    opts: dict[str, Any] = {}
    for item in items:
        m = re.fullmatch(r"(\w+)=(.*)", item, flags=re.S)
        if not m:
            raise InvalidRequestError("--set", item, "write KEY=VALUE, e.g. max_rethinks=1")
        opts[m.group(1)] = parse_set_value(m.group(2))
    return opts


# -- per-chain validators: build the chain's config from the options (that validates them) ---------
def _generation_keys(opts: Mapping[str, Any], _mode: str) -> None:
    from adapters.types import GenerationRequest

    GenerationRequest.build("x", max_tokens=opts.get("max_tokens", 512),
                            temperature=opts.get("temperature", 0.0))


def _leco(opts: Mapping[str, Any], _mode: str) -> None:
    from graphs.leco.config import LecoConfig

    LecoConfig.from_options(dict(opts))


def _leco_vote(opts: Mapping[str, Any], _mode: str) -> None:
    from sc_chains.eval.chains import LECO_VOTE

    _leco({**LECO_VOTE, **dict(opts)}, _mode)


def _leco_plain(vote: bool) -> Callable[[Mapping[str, Any], str], None]:
    def check(opts: Mapping[str, Any], mode: str) -> None:
        from graphs.leco.prompts import PLAIN_FORMAT

        (_leco_vote if vote else _leco)({**PLAIN_FORMAT, **dict(opts)}, mode)
    return check


def _sc(opts: Mapping[str, Any], _mode: str) -> None:
    from graphs.sc.config import ScConfig

    ScConfig.from_options(dict(opts))


def _s2a(opts: Mapping[str, Any], _mode: str) -> None:
    from graphs.s2a.config import S2AConfig

    S2AConfig.from_options({k: v for k, v in opts.items() if k != "leco"})


def _s2a_chain(chain: str) -> Callable[[Mapping[str, Any], str], None]:
    def check(opts: Mapping[str, Any], mode: str) -> None:
        from sc_chains.eval.chains import S2A_CHAINS

        _s2a({**S2A_CHAINS[chain], **dict(opts)}, mode)
    return check


def _s2a_leco(opts: Mapping[str, Any], mode: str) -> None:
    _s2a(opts, mode)
    leco = opts.get("leco", {})
    if not isinstance(leco, Mapping):
        raise InvalidRequestError("leco", leco, 'pass a JSON object of LecoConfig fields, e.g. {"max_rethinks": 1}')
    _leco(leco, mode)


def _critique(opts: Mapping[str, Any], mode: str) -> None:
    from graphs.critique.config import CritiqueConfig

    CritiqueConfig.from_options({"mode": mode, **dict(opts)})


def _config_keys(path: str) -> Callable[[], list[str]]:
    def keys() -> list[str]:
        import importlib

        module, _, name = path.rpartition(".")
        return [f.name for f in fields(getattr(importlib.import_module(module), name))]
    return keys


_VALIDATORS: dict[str, tuple[Callable[[], list[str]], Callable[[Mapping[str, Any], str], None]]] = {
    "baseline": (lambda: ["max_tokens", "temperature"], _generation_keys),
    "oracle": (lambda: ["max_tokens", "temperature"], _generation_keys),
    "leco": (_config_keys("graphs.leco.config.LecoConfig"), _leco),
    "s2a": (_config_keys("graphs.s2a.config.S2AConfig"), _s2a),
    "s2a+leco": (lambda: [*_config_keys("graphs.s2a.config.S2AConfig")(), "leco"], _s2a_leco),
    "s2a-fewshot": (_config_keys("graphs.s2a.config.S2AConfig"), _s2a_chain("s2a-fewshot")),
    "s2a-filter": (_config_keys("graphs.s2a.config.S2AConfig"), _s2a_chain("s2a-filter")),
    "s2a-filter-question": (_config_keys("graphs.s2a.config.S2AConfig"), _s2a_chain("s2a-filter-question")),
    "critique": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "leco-vote": (_config_keys("graphs.leco.config.LecoConfig"), _leco_vote),
    "leco-plain": (_config_keys("graphs.leco.config.LecoConfig"), _leco_plain(vote=False)),
    "leco-vote-plain": (_config_keys("graphs.leco.config.LecoConfig"), _leco_plain(vote=True)),
    "sc": (_config_keys("graphs.sc.config.ScConfig"), _sc),
    "critique-program": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "critique-self": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "critique-gate": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "critique-program-revise": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "critique-program-vote": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
    "critique-program-sc": (_config_keys("graphs.critique.config.CritiqueConfig"), _critique),
}
CHAIN_KEYS = _VALIDATORS
"""Chain name -> (valid keys, validator) for the chains whose options the CLI checks."""


def validate_chain_options(chain: str, options: Mapping[str, Any], *, mode_default: str = "score",
                           label: str | None = None) -> None:
    """Raise :class:`InvalidRequestError` naming ``chain.key``, the value and the fix when an
    option is unknown to ``chain``'s config or has a bad value. ``mode_default``: the critique
    mode the chain runs in (eval: ``score``; ``run critique``: ``self-refine``). ``label``: the
    prefix of the key in messages (default ``"--set CHAIN."``)."""
    prefix = f"--set {chain}." if label is None else label
    if chain not in _VALIDATORS:
        return  # a chain the CLI does not know how to check: its own constructor will
    keys, check = _VALIDATORS[chain]
    valid = keys()
    for key in options:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise InvalidRequestError(f"{prefix}{key}", options[key],
                                      f"{chain} has no option {key!r}; {hint}valid keys: {', '.join(valid)}")
    try:
        check(options, mode_default)
    except InvalidRequestError as exc:
        nested = options.get("leco") if isinstance(options.get("leco"), Mapping) else {}
        name = f"leco.{exc.param}" if exc.param not in options and exc.param in nested else exc.param
        raise InvalidRequestError(f"{prefix}{name}", exc.value, exc.fix) from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"{prefix}{chain}".rstrip("."), dict(options), f"{exc}; valid keys: {', '.join(valid)}") from None


SEED_MAX = 2**63 - 1
"""The largest seed a local generator (torch's, a signed 64-bit integer) takes."""


def check_numbers(args: Any, bounds: Mapping[str, float | tuple[float, float]]) -> None:
    """Raise :class:`InvalidRequestError` for a numeric argument of ``args`` out of its bounds
    (``None`` means "not given" and passes). ``bounds`` maps an attribute to its least value or
    to ``(least, most)``; a ``seed`` is also at most :data:`SEED_MAX`."""
    for name, bound in bounds.items():
        value = getattr(args, name, None)
        low, high = bound if isinstance(bound, tuple) else (bound, SEED_MAX if name == "seed" else None)
        if value is None or (value >= low and (high is None or value <= high)):
            continue
        flag = "--" + name.replace("_", "-")
        kind = "an integer" if isinstance(value, int) else "a number"
        rng = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]" if high < 1e6 else f"in [{low:g}, {high}]"
        raise InvalidRequestError(flag, value, f"pass {kind} {rng}")


def check_spec(spec: Any) -> None:
    """Raise :class:`UnknownModelSpecError` for a spec string whose scheme or shape is wrong
    (``hg:tiny-random``, ``openai:``). Whether an ``hf:`` path exists is checked when it loads."""
    from adapters.specs import KNOWN_SPECS

    if not isinstance(spec, str):
        return
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in ("hf", "openai") or not rest.strip():
        raise UnknownModelSpecError(spec, KNOWN_SPECS)
