"""The web server in the daemon: uvicorn in a child process of its own (spawned, at the lowest
scheduling priority, below the processing and delivery workers), serving on a socket the daemon bound, so a busy web
view never competes with the SMTP listener's event loop and an address in use fails at
start. The child builds its own desk on the same config and dies with the daemon; a child
that exits is started again (:class:`maildesk.daemon.workers.ProcessWorker`'s supervision).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

from maildesk.daemon.workers import ProcessWorker, _die_with_parent
from maildesk.errors import ConfigError

__all__ = ["WEB_NICE", "WebWorker", "bind"]

# Below the listener and below the processing and delivery workers (NICE): pages wait for mail, never the other way.
WEB_NICE = 19



def bind(config) -> socket.socket:
    host, port = config.web.address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(str(config.path), "[web] listen",
                          f"cannot listen on {config.web.listen}: {exc.strerror or exc}; choose a free address or remove the key") from exc
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


class WebWorker(ProcessWorker):
    """The daemon's handle on the web child (start, supervise, restart, stop)."""

    def __init__(self, config_path: str, wakeups: dict | None, sock: socket.socket):
        super().__init__("web", config_path, wakeups or {}, 1.0, build=None)  # web_main builds its own desk
        self.sock = sock

    def _target(self):
        return web_main, (self.config_path, self.wakeups, self.sock, os.getpid())

    def wake(self) -> None:  # nothing wakes the web server
        pass


def web_main(config_path: str, wakeups: dict, sock: socket.socket, parent: int) -> None:
    _die_with_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(WEB_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the daemon decides
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    import uvicorn

    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk
    from maildesk.daemon.logsetup import configure
    from maildesk.web.app import build_app

    config = load_config(config_path)
    configure(config.log.level, config.log.redact_addresses)
    desk = build_desk(config)
    if "process" in wakeups:
        desk.wakeups.update(process=wakeups["process"].set, outbox=wakeups["deliver"].set)
    web = config.web
    server = uvicorn.Server(uvicorn.Config(build_app(desk), log_level="warning", access_log=False,
                                           ssl_certfile=str(config.resolve(web.tls_cert)) if web.tls else None,
                                           ssl_keyfile=str(config.resolve(web.tls_key)) if web.tls else None,
                                           timeout_graceful_shutdown=5))
    asyncio.run(server.serve(sockets=[sock]))  # uvicorn stops gracefully on SIGTERM
    desk.store.dispose()
