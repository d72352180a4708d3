"""``sc-chains serve``: an OpenAI-compatible chat-completions server whose model names are chains.

``POST /v1/chat/completions`` with ``model="leco"`` (or ``baseline``, ``s2a``, ``critique``,
``s2a+leco``) answers with the corrected answer, ``usage`` summed over every model call, and the
chain's trace and cost in the ``sc_chains`` field. ``POST /v1/completions`` scores text (OpenAI's
echo form, no generation: :mod:`sc_chains.server.scoring`). Needs the ``serve`` extra (Starlette, uvicorn).
"""

from sc_chains.server.config import ServerConfig
from sc_chains.server.run import ServerStartError, running_server, serve

__all__ = ["ServerConfig", "ServerStartError", "create_app", "running_server", "serve"]


def create_app(model, config=None):  # noqa: ANN001, ANN201 - re-exported lazily (Starlette is optional)
    """See :func:`sc_chains.server.app.create_app`."""
    from sc_chains.server.app import create_app as _create

    return _create(model, config)
