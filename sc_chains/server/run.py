"""Running the app under uvicorn: :func:`serve` (blocking, graceful on SIGINT/SIGTERM) and
:func:`running_server` (a context manager: a server in a background thread on a free port, for
tests, benchmarks and notebooks)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from adapters.errors import SCChainsError
from sc_chains.server.config import ServerConfig

__all__ = ["ServeExtraMissingError", "ServerStartError", "require_serve_extra", "running_server", "serve"]

_START_TIMEOUT_S = 60.0


class ServeExtraMissingError(SCChainsError, ModuleNotFoundError):
    """Starlette or uvicorn is not installed."""

    def __init__(self, package: str) -> None:
        self.package = package
        super().__init__(f"sc-chains serve needs the package {package!r}, which is not installed. "
                         "Install it with: pip install 'sc-chains[serve]'")


def require_serve_extra() -> None:
    """Raise :class:`ServeExtraMissingError` unless the ``serve`` extra is installed."""
    import importlib.util

    for package in ("starlette", "uvicorn"):
        if importlib.util.find_spec(package) is None:
            raise ServeExtraMissingError(package)


def _uvicorn_config(app: Any, config: ServerConfig, *, access_log: bool) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=config.host, port=config.port, log_level=config.log_level,
                          access_log=access_log, timeout_graceful_shutdown=config.graceful_timeout_s,
                          lifespan="off")


def serve(model: Any, config: ServerConfig | None = None) -> None:
    """Serve ``model`` until SIGINT/SIGTERM; in-flight requests get ``graceful_timeout_s`` to finish."""
    require_serve_extra()
    import uvicorn

    from adapters.secrets import SCRUBBED_LOGGERS, install_log_scrubbing
    from sc_chains.server.app import create_app

    install_log_scrubbing((*SCRUBBED_LOGGERS, "sc_chains.server", "uvicorn.error", "uvicorn.access"))

    config = config or ServerConfig()

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """SIGINT/SIGTERM start the graceful shutdown; unlike uvicorn's own, the signal is not
            raised again afterwards, so a drained server exits with status 0."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

    server = _Server(_uvicorn_config(create_app(model, config), config, access_log=True))
    server.run()
    if not server.started:
        raise ServerStartError(config.host, config.port)


class ServerStartError(SCChainsError, OSError):
    """uvicorn could not start (usually: the port is taken)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        super().__init__(f"could not listen on {host}:{port} (see the log above); pick another --port")


@contextlib.contextmanager
def running_server(model: Any, config: ServerConfig | None = None) -> Iterator[str]:
    """Serve ``model`` in a background thread on ``config.host`` and a free port (when
    ``config.port`` is 0, the default here); yields the base URL (``http://HOST:PORT/v1``)."""
    import uvicorn

    from sc_chains.server.app import create_app

    config = config or ServerConfig(port=0, log_level="warning")
    app = create_app(model, config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    server = uvicorn.Server(_uvicorn_config(app, config, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sc-chains-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ServerStartError(config.host, sock.getsockname()[1])
        time.sleep(0.01)
    try:
        yield f"http://{config.host}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=config.graceful_timeout_s + 10)
        sock.close()
