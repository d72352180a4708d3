"""Local Hugging Face models as :class:`~adapters.base.LogprobModel` (``hf:`` specs).

``load_hf_model("default")`` is the embedded SmolLM2-135M-Instruct, ``"tiny-random"`` a tiny
random model built in code, ``"qwen2.5-coder-0.5b"`` the bundled Qwen2.5-Coder, anything else
a model folder or hub id. Importing this package is light; torch and transformers load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from adapters.hf.model import HFModel

__all__ = ["HFModel", "load_hf_model", "tiny_random_model"]


def load_hf_model(spec: str, **options: Any) -> HFModel:
    """The :class:`HFModel` for an ``hf:`` spec (the part after ``hf:``).

    ``options``: ``device=`` ("cpu", "cuda", "auto"), ``dtype=`` ("float32", "bfloat16", ...),
    and :class:`HFModel` keywords (``kv_reuse=``, ``max_batch_size=``, ``batching=``, ``name=``).
    Raises :class:`~adapters.errors.ModelNotFoundError` for a missing path and
    :class:`~adapters.errors.EmbeddedModelMissingError` when an embedded model's package is
    not installed.
    """
    from adapters.hf.embedded import EMBEDDED_MODELS, embedded_model_folder
    from adapters.hf.load import load_pretrained

    if spec == "tiny-random":
        from adapters.hf.tiny import tiny_random_model

        return tiny_random_model(**options)
    if spec in EMBEDDED_MODELS:
        options.setdefault("name", f"hf:{spec}")
        return load_pretrained(embedded_model_folder(spec), **options)
    return load_pretrained(spec, **options)


def tiny_random_model(**options: Any) -> HFModel:
    """The tiny random model (see :mod:`adapters.hf.tiny`)."""
    from adapters.hf.tiny import tiny_random_model as build

    return build(**options)


def __getattr__(name: str) -> Any:
    if name == "HFModel":
        from adapters.hf.model import HFModel

        return HFModel
    raise AttributeError(f"module 'adapters.hf' has no attribute {name!r}")
