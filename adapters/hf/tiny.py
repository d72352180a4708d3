"""``hf:tiny-random``: a deterministic tiny random causal LM built entirely in code.

No files, no network: a 2-layer Llama (hidden 64) whose weights come from a fixed-seed torch
generator, and a character-level tokenizer (printable ASCII, ``"\\n"``, ``"\\t"`` and ChatML
special tokens) so every token decodes to whole characters. The output is gibberish, but the
logits are real: tests use it to check the decoding loop, logprob math, prefill, KV reuse and
batching against manual forward passes in milliseconds.
"""

from __future__ import annotations

import functools
import string
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from adapters.hf.model import HFModel

__all__ = ["TINY_CHAT_TEMPLATE", "build_tiny_random", "tiny_random_model"]

SPECIAL_TOKENS = ("<unk>", "<pad>", "<|im_start|>", "<|im_end|>")
"""Special tokens, ids 0..3. ``<|im_end|>`` is the end-of-turn (EOS) token."""

CHARS = tuple(string.printable[:95]) + ("\n", "\t")
"""The ordinary vocabulary: digits, letters, punctuation, space, newline, tab (ids 4..100)."""

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, as SmolLM2 and Qwen use it (without a default system prompt)."""

SEED = 1234
"""Seed of the weight generator; changing it changes every test's expected gibberish."""

INIT_STD = 0.35
"""Std of the random weights: large enough that next-token distributions are peaked
(greedy choices are far from ties, so batched/cached runs pick the same tokens)."""


def _build_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # one token per character; the special tokens are matched first, as whole strings
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def _build_model(vocab_size: int, pad_id: int, bos_id: int, eos_id: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from adapters.hf.attention import resolve_attention

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
        attn_implementation=resolve_attention("auto", torch.device("cpu")),
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    # Fill every parameter from our own generator, in name order, so the weights do not depend
    # on how a transformers version initialises modules: same weights on every machine.
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float32) * INIT_STD)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    model.eval()
    return model


@functools.lru_cache(maxsize=1)
def build_tiny_random() -> tuple[Any, Any]:
    """The tiny random ``(model, tokenizer)`` pair (CPU, fp32), built once per process."""
    tokenizer = _build_tokenizer()
    model = _build_model(
        len(tokenizer),
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    return model, tokenizer


@functools.lru_cache(maxsize=1)
def _default_instance() -> HFModel:
    from adapters.hf.model import HFModel

    model, tokenizer = build_tiny_random()
    return HFModel(model, tokenizer, name="hf:tiny-random")


def tiny_random_model(**options: Any) -> HFModel:
    """An :class:`~adapters.hf.model.HFModel` over the tiny random model.

    Without options the same instance is returned every time; ``options`` (``kv_reuse=``,
    ``max_batch_size=``, ``device=``, ``dtype=``, ``attn_implementation=``...) build a new
    adapter over the same weights. ``prepack_weights`` defaults to ``False`` here (unlike
    :func:`~adapters.hf.load.load_pretrained`): plain ``nn.Linear`` keeps the tiny model's
    outputs the same on every CPU; ``True``/``"auto"`` pack a copy.
    """
    if not options:
        return _default_instance()
    import copy

    import torch

    from adapters.hf.attention import DECODE_ATTENTION, resolve_attention
    from adapters.hf.load import resolve_device, resolve_dtype
    from adapters.hf.model import HFModel
    from adapters.hf.packed import prepack_linears, resolve_prepack

    model, tokenizer = build_tiny_random()
    device = resolve_device(options.pop("device", "cpu"))
    dtype = resolve_dtype(options.pop("dtype", None), device)
    attention = resolve_attention(options.pop("attn_implementation", "auto"), device)
    prepack = resolve_prepack(options.pop("prepack_weights", False), device, dtype)
    if device.type != "cpu" or dtype != torch.float32 or attention != DECODE_ATTENTION or prepack:
        model = copy.deepcopy(model).to(device=device, dtype=dtype)  # never change the shared instance
        model.set_attn_implementation(attention or "sdpa")
        if prepack:
            prepack_linears(model)
    options.setdefault("name", "hf:tiny-random")
    return HFModel(model, tokenizer, **options)
