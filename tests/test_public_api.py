"""The flat public API: sorted, complete, resolvable, and light to import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import sc_chains


def test_all_is_sorted_and_unique() -> None:
    assert sc_chains.__all__ == sorted(set(sc_chains.__all__))


def test_every_exported_name_resolves() -> None:
    for name in sc_chains.__all__:
        assert getattr(sc_chains, name) is not None, name


def test_a_small_api_with_one_import_path_per_name() -> None:
    """About 45 names; each resolves to the object its defining module exports; no ``sc_chains``
    module re-exports an ``adapters`` / ``graphs`` object (those keep one path: where they are
    defined, plus the top level), except ``sc_chains.testing``, the documented home of the fakes."""
    assert 40 <= len(sc_chains.__all__) <= 50, len(sc_chains.__all__)
    for name, source in sc_chains._EXPORTS.items():
        module = importlib.import_module(source)
        assert name in getattr(module, "__all__", [name]), f"{name} is not public in {source}"
        assert getattr(sc_chains, name) is getattr(module, name)
    offenders = []
    for info in pkgutil.walk_packages(sc_chains.__path__, "sc_chains."):
        if info.name.endswith("__main__") or info.name.startswith("sc_chains.testing"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            root = (getattr(obj, "__module__", None) or "").split(".")[0]
            if root in ("adapters", "graphs"):
                offenders.append(f"{info.name}.{name} (defined in {obj.__module__})")
    assert offenders == []


def test_shadowing_graphs_or_adapters_package_is_a_clear_import_error(tmp_path) -> None:
    """A user's own ``graphs/`` (or ``adapters/``) package first on sys.path: ``import sc_chains``
    names the shadowing folder and the fix, instead of a ModuleNotFoundError deep inside."""
    root = Path(sc_chains.__file__).resolve().parent.parent
    for name in ("graphs", "adapters"):
        folder = tmp_path / name / name
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        code = f"import sys; sys.path[:0] = [{str(tmp_path / name)!r}, {str(root)!r}]; import sc_chains"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode != 0
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("ImportError:") and str(folder) in last and "rename or move" in last, last
    # a folder without __init__.py does not shadow a regular package: the import works
    (tmp_path / "ns" / "graphs").mkdir(parents=True)
    code = f"import sys; sys.path[:0] = [{str(tmp_path / 'ns')!r}, {str(root)!r}]; import sc_chains, graphs.leco"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


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
