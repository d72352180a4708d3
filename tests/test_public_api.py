"""The flat public API: sorted, complete, resolvable, and light to import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import sc_chains


def test_all_is_sorted_and_unique() -> None:
    assert sc_chains.__all__ == sorted(set(sc_chains.__all__))


def test_every_exported_name_resolves() -> None:
    for name in sc_chains.__all__:
        assert getattr(sc_chains, name) is not None, name


def test_all_is_complete() -> None:
    """Every public name of an ``sc_chains`` module the API draws from is exported, and every
    exported name is public where it is defined (httpx's exported-members test)."""
    missing = []
    for module_name in sorted(set(sc_chains._EXPORTS.values())):
        module = importlib.import_module(module_name)
        for name, source in sc_chains._EXPORTS.items():
            if source == module_name:
                assert name in getattr(module, "__all__", [name]), f"{name} is not public in {module_name}"
        if not module_name.startswith("sc_chains."):
            continue
        for name in getattr(module, "__all__", []):
            if name not in sc_chains.__all__:
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        sc_chains.DoesNotExist  # noqa: B018
    except AttributeError as exc:
        assert "DoesNotExist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    code = (
        "import sys, sc_chains, sc_chains.testing, adapters, graphs;"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch','transformers','openai'));"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
