"""The `serve` process: event loop, listening sockets, signals, workers.

- One worker (`server.workers = 1`): this process serves.
- N workers: this process forks N children right after the config was
  validated, each binding the same host and port with `SO_REUSEPORT` (the
  kernel spreads new connections over them). The parent only relays
  signals and waits. When a worker dies on its own, the parent stops the
  others and exits 1: restarting is left to the supervisor (Docker's
  `restart:`, systemd, Kubernetes), which sees the failure and has a
  back-off policy, instead of a crash loop hidden inside one container.
  A parent that dies without relaying (SIGKILL, the OOM killer) leaves no
  worker serving behind it: on Linux each worker asks the kernel for a
  SIGTERM when its parent dies, and stops as on any SIGTERM.
- With `server.metrics_port`, worker i serves `/metrics` alone on
  `metrics_port + i`: each worker's counters are its own, so each is a
  scrape target of its own (one shared port would answer from a random
  worker on each scrape and make counters jump).

Signals, in each worker:

- SIGTERM / SIGINT: graceful stop. The listening sockets close at once (new
  connections are refused), idle keep-alive connections close, requests in
  flight get up to `server.shutdown_timeout_s` to finish, then the origin
  client and the store close, the log lines still queued are written (for
  at most `logwriter.FLUSH_TIMEOUT_S`, so an unread stderr cannot hold the
  exit), and the process exits 0.
- SIGHUP: the config file (and environment) is read again and the signing
  keys reloaded (`KeyRing.rotate`): the first signs from now on, and keys no
  longer configured stay published and trusted for `lifetime_s +
  max(max_expired_s, outage_max_expired_s) + 60` seconds, as long as a
  token they signed can still be posted for cloning. Other settings need a
  restart. A config that fails to load is logged and counted, and the old
  keys stay.

Event loop (`server.loop`): "asyncio", "uvloop", or "auto" (uvloop when
it is installed). The default is "asyncio": see the README for the
measurement behind that choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from aiohttp import web

from .app import create_app
from .config import ConfigError, Settings, load_settings
from .heap import freeze_startup_heap
from .keys import load_signing_keys
from .logwriter import flush_logs
from .metrics import metrics_app
from .services import SERVICES, Services

__all__ = ["ROTATION_LEEWAY_S", "event_loop_factory", "reload_keys", "serve"]

log = logging.getLogger("session_minter.process")

ROTATION_LEEWAY_S = 60


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for `server.loop`; None is asyncio's default loop."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")  # optional: not a dependency
    except ImportError as exc:
        if choice == "uvloop":
            raise ConfigError('server.loop: "uvloop" is not installed') from exc
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def reload_keys(services: Services, path: Path | None) -> bool:
    """SIGHUP: read the config again and rotate the signing keys; False when refused."""
    try:
        fresh = load_settings(path)
        keys = load_signing_keys(fresh.keys)
    except ConfigError as exc:
        log.error("signing keys not reloaded: %s", exc)
        services.metrics.key_reloads.labels("failed").inc()
        return False
    tokens = services.settings.tokens
    overlap_s = tokens.lifetime_s + tokens.widest_expired_s + ROTATION_LEEWAY_S
    try:
        services.keyring.rotate(keys, overlap_s=overlap_s)
    except ValueError as exc:
        log.error("signing keys not reloaded: %s", exc)
        services.metrics.key_reloads.labels("failed").inc()
        return False
    services.metrics.key_reloads.labels("ok").inc()
    return True


async def _worker(settings: Settings, path: Path | None, index: int) -> None:
    server = settings.server
    reuse_port = server.workers > 1
    app = create_app(settings)
    services = app[SERVICES]
    runners = [web.AppRunner(app, access_log=None, shutdown_timeout=server.shutdown_timeout_s)]
    if server.metrics_port:
        runners.append(web.AppRunner(metrics_app(services.metrics), access_log=None))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reload_keys(services, path))
    try:
        await runners[0].setup()
        freeze_startup_heap()  # the store's tables and the app, out of every collection
        await _listen(
            web.TCPSite(runners[0], server.host, server.port, backlog=1024, reuse_port=reuse_port)
        )
        if len(runners) > 1:
            await runners[1].setup()
            await _listen(web.TCPSite(runners[1], server.host, server.metrics_port + index))
        log.info(
            "serving on %s:%d (worker %d, pid %d, kid %s)",
            server.host,
            server.port,
            index,
            os.getpid(),
            services.keyring.active.kid,
        )
        await stop.wait()
        # A reload while stopping would only race the shutdown (and, once the loop's
        # handler is gone, kill the process): from here on SIGHUP is ignored.
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        log.info("stopping: finishing requests in flight (up to %gs)", server.shutdown_timeout_s)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    log.info("stopped")


class _ListenFailed(Exception):
    """A listening socket could not be opened (the port is taken, say)."""


async def _listen(site: web.TCPSite) -> None:
    try:
        await site.start()
    except OSError as exc:
        raise _ListenFailed(f"cannot listen on {site.name}: {exc.strerror or exc}") from None


def _run_worker(settings: Settings, path: Path | None, index: int) -> int:
    """Serve until stopped: 0, or 2 when the port cannot be opened (one line logged)."""
    # Until the loop installs its reload handler, a SIGHUP (the default kills) is dropped:
    # the keys this worker is about to load are already the current ones.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    factory = event_loop_factory(settings.server.loop)
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_worker(settings, path, index))
    except _ListenFailed as exc:
        log.error("%s", exc)
        return 2
    return 0


def serve(settings: Settings, path: Path | None) -> int:
    """Run the edge until SIGTERM; `path` is read again on SIGHUP."""
    event_loop_factory(settings.server.loop)  # a missing uvloop fails before any fork
    if settings.server.workers == 1:
        return _run_worker(settings, path, 0)
    return _supervise(settings, path)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its parent dies (Linux only)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("workers will outlive a killed parent: prctl failed (%d)", ctypes.get_errno())
    elif os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _supervise(settings: Settings, path: Path | None) -> int:
    children: dict[int, int] = {}  # pid -> worker index
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    for index in range(settings.server.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            _stop_with_parent(parent)
            code = 1
            try:
                code = _run_worker(settings, path, index)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()  # flushes the log writer (bounded: FLUSH_TIMEOUT_S)
                flush_logs()  # request lines too; at once when nothing is left
                os._exit(code)
        children[pid] = index
    stopping = False

    def relay(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGHUP and stopping:
            return  # nothing to reload any more
        if signum != signal.SIGHUP:
            stopping = True
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nor after this process returns
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, relay)
    log.info("supervising %d workers: %s", len(children), sorted(children))
    failed = False
    while children:
        pid, status = os.wait()
        if pid not in children:
            continue
        index = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if not stopping:
            log.error("worker %d (pid %d) exited with %d: stopping the others", index, pid, code)
            failed = True
            relay(signal.SIGTERM, None)
        elif code != 0:
            failed = True
    return 1 if failed else 0
