"""Show generations: tokens coloured by probability (rich), and a stable JSON shape.

The colour scale is a pure function (:func:`prob_style`) so other views (the LECO step scores
of ``sc-chains demo``) colour the same way. ``rich`` is imported only when something is drawn.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from adapters.types import Generation, TokenLogprob

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "PROB_SCALE",
    "alternatives_table",
    "generation_to_json",
    "legend",
    "prob_style",
    "render_tokens",
    "token_segments",
    "tokens_text",
]

PROB_SCALE: tuple[tuple[float, str], ...] = (
    (0.9, "green"),
    (0.5, "yellow"),
    (0.2, "dark_orange"),
    (0.0, "red"),
)
"""``(lowest probability, rich style)`` bands, highest first: p >= 0.9 green ... p < 0.2 red."""


def prob_style(p: float) -> str:
    """The rich style for probability ``p`` (a NaN or negative value counts as 0: red)."""
    if not isinstance(p, (int, float)) or math.isnan(p):
        return PROB_SCALE[-1][1]
    for low, style in PROB_SCALE:
        if p >= low:
            return style
    return PROB_SCALE[-1][1]


def token_segments(generation: Generation) -> list[tuple[str, TokenLogprob | None]]:
    """Cut ``generation.text`` into one piece per token, using the tokens' offsets.

    The pieces always concatenate to ``generation.text`` exactly, even where a token's own
    string differs from its span (byte-level partial characters decode as ``""``; a stop
    sequence cut the last token): piece ``i`` runs from token ``i``'s offset to token ``i+1``'s
    (the first piece also holds any text before the first token; the last, any after).
    Without tokens the whole text is one piece paired with ``None``.
    """
    text = generation.text
    tokens = generation.tokens or ()
    if not tokens:
        return [(text, None)] if text else []
    bounds = [0]
    for tok in tokens[1:]:
        bounds.append(min(max(tok.offset, bounds[-1]), len(text)))
    bounds.append(len(text))
    return [(text[bounds[i] : bounds[i + 1]], tok) for i, tok in enumerate(tokens)]


def tokens_text(generation: Generation) -> Text:
    """The generation's text as a rich ``Text``, each token styled by its probability."""
    from rich.text import Text

    out = Text()
    for piece, tok in token_segments(generation):
        out.append(piece, style=prob_style(tok.prob) if tok is not None else "")
    return out


def legend() -> Text:
    """A one-line key of the colour scale."""
    from rich.text import Text

    out = Text()
    out.append("p(token): ", style="dim")
    upper = None
    for low, style in PROB_SCALE:
        label = f"≥ {low:g}" if upper is None else f"{low:g}–{upper:g}"
        if low == 0.0:
            label = f"< {upper:g}" if upper is not None else "any"
        out.append(f"■ {label}  ", style=style)
        upper = low
    return out


def render_tokens(generation: Generation, console: Console | None = None, *, show_legend: bool = True) -> None:
    """Print the generation's text with each token coloured by its probability, then a legend."""
    if console is None:
        from rich.console import Console

        console = Console()
    console.print(tokens_text(generation), soft_wrap=True)
    if show_legend and generation.tokens:
        console.print(legend())


def alternatives_table(generation: Generation) -> Any:
    """A rich table with one row per token: the token, its probability, and its
    ``top_logprobs`` alternatives with theirs (what ``generate --top-logprobs K`` shows)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="alternatives per token", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("p", justify="right")
    table.add_column("alternatives (p)")
    for i, tok in enumerate(generation.tokens or ()):
        alts = Text()
        for j, alt in enumerate(tok.top_logprobs):
            p = math.exp(alt.logprob)
            alts.append(("  " if j else "") + f"{alt.token!r} {p:.3f}", style=prob_style(p))
        table.add_row(str(i), Text(repr(tok.token)), Text(f"{tok.prob:.3f}", style=prob_style(tok.prob)), alts)
    return table


def generation_to_json(gen: Generation) -> dict[str, Any]:
    """A JSON-ready dict of a generation.

    ``{"text", "tokens": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}],
    "usage", "model", "finish_reason"}``; ``usage`` is :meth:`Usage.to_dict`. ``tokens`` is
    ``None`` when the model returned no logprobs.
    """
    tokens = None
    if gen.tokens is not None:
        tokens = [
            {
                "token": t.token,
                "logprob": t.logprob,
                "top_logprobs": [{"token": a.token, "logprob": a.logprob} for a in t.top_logprobs],
            }
            for t in gen.tokens
        ]
    return {
        "text": gen.text,
        "tokens": tokens,
        "usage": gen.usage.to_dict(),
        "model": gen.model,
        "finish_reason": gen.finish_reason,
    }
