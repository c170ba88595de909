"""The desktop app: pywebview owns the main thread, the host runs on its own event loop in a worker thread.

GUI toolkits (GTK, Cocoa, WinForms) insist on the main thread, so the host cannot run there as it does in
``nanoclaw serve``. The window opens on a one-time login link: it cannot be handed the HttpOnly session cookie any
other way, and the link sets it and redirects to ``/`` (setup until it is done, then the chat).

Where no window can open (no display, no GUI backend, pywebview failing) the app keeps running headless and says where
to find it, because a home server is a normal place to run it: never a traceback.

Closing the window hides it behind the tray icon, so the phone chats keep being answered; where no tray shows, it quits
(see :mod:`nanoclaw_app.desktop.life`). One app runs per home: a second launch brings the first one's window forward
(:mod:`nanoclaw_app.desktop.instance`, :mod:`nanoclaw_app.desktop.handover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from nanoclaw_app import __version__
from nanoclaw_app.desktop.control import ControlServer
from nanoclaw_app.desktop.handover import hand_over
from nanoclaw_app.desktop.instance import InstanceLock, InstanceRecord, write_record
from nanoclaw_app.desktop.life import DesktopLife
from nanoclaw_app.errors import NanoClawError
from nanoclaw_app.paths import resource
from nanoclaw_app.processes import start_again
from nanoclaw_app.settings import Settings, load_settings

if TYPE_CHECKING:
    from webview import Window

    from nanoclaw_app.host import Host

log = logging.getLogger(__name__)

T = TypeVar("T")

TITLE = "NanoClaw"
SIZE = (1200, 760)
MIN_SIZE = (760, 520)
STOP_SECONDS = 60.0
"""How long closing waits for the host to stop (containers get their own shorter grace inside it)."""
INSTALL_GUI = "install the window's packages with scripts/setup.sh (WebKitGTK and the `gtk` extra on Linux)"


class HostThread:
    """The host on a private event loop in one worker thread; the main thread reaches it through :meth:`call`."""

    def __init__(self, settings: Settings, *, on_exit: Callable[[], None] | None = None,
                 reload: Callable[[], Settings] | None = None) -> None:
        self._settings = settings
        self._on_exit = on_exit
        self._reload = reload or (lambda: load_settings(settings.paths))
        self._restart = False
        self.on_restarted: Callable[[str], None] | None = None
        """Called (on a thread of its own) with the new URL after a restart the user asked for."""
        self.on_restart_failed: Callable[[BaseException], None] | None = None
        """Called (on a thread of its own) when the restarted host could not start; the app then waits to quit."""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._stop_requested = threading.Event()
        # A daemon, so that a host stuck in stopping cannot keep the process alive after STOP_SECONDS.
        self._thread = threading.Thread(target=self._main, name="nanoclaw-host", daemon=True)
        self.host: Host | None = None
        self.url = ""
        self.failed = False
        """True when the host ended with an error (at start or while stopping)."""

    def launch(self) -> None:
        """Start the thread; the host comes up in the background (see :meth:`wait_ready`)."""
        self._thread.start()

    def wait_ready(self) -> str:
        """Wait until the host serves; returns its URL or raises what stopped it from starting."""
        while not self._ready.wait(0.5):  # a timeout lets signal handlers run on every platform
            pass
        if self._error is not None:
            self._thread.join()
            raise self._error
        if not self.url:
            raise NanoClawError("the host stopped while starting; see the log")
        return self.url

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the host's loop and wait for its result."""
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def alive(self) -> bool:
        """Whether the host thread still runs."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop the host and wait for its thread (idempotent; also while it is still starting)."""
        self._stop_requested.set()  # before reading the loop: _serve reads this flag after publishing its loop
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended between the check and the call
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(STOP_SECONDS)
            if self._thread.is_alive():
                log.error("the host did not stop within %.0f s; exiting anyway", STOP_SECONDS)
                self.failed = True

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # the thread's last stop: hand the error to the main thread, never lose it
            self.failed = True
            if self._ready.is_set():
                log.exception("the host stopped with an error")
            else:
                self._error = err
        finally:
            self._ready.set()
            # A host that never started is reported by whoever waits for it (the window shows why it failed).
            if self._on_exit is not None and self._error is None:
                self._on_exit()

    def request_restart(self) -> None:
        """Stop the host and start a new one with the settings on disk (any thread; the window stays)."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None or self._stop_requested.is_set():
            return
        self._restart = True
        loop.call_soon_threadsafe(stop.set)

    async def _serve(self) -> None:
        from nanoclaw_app.host import Host

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        settings = self._settings
        restarted = False
        while True:
            host = Host(settings)
            host.services.restart = self.request_restart
            self.host = host
            try:
                await host.start()
            except Exception as err:
                if not restarted:
                    raise  # the first start's failure goes to whoever waits (wait_ready)
                log.exception("NanoClaw could not start again after the restart")
                self._tell(self.on_restart_failed, err)
                await self._stop.wait()
                return
            try:
                self.url = host.url or ""
                self._ready.set()
                if restarted:
                    log.info("restarted: the app is at %s", self.url)
                    self._tell(self.on_restarted, self.url)
                await self._stop.wait()
            finally:
                await host.stop()
            if not self._restart or self._stop_requested.is_set():
                return
            self._restart, restarted = False, True
            self._stop.clear()
            try:
                settings = await asyncio.to_thread(self._reload)
            except Exception as err:  # settings.json broken by hand since the start: said in the window
                log.error("NanoClaw could not start again after the restart: %s", err)
                self._tell(self.on_restart_failed, err)
                await self._stop.wait()
                return

    @staticmethod
    def _tell(callback: Callable[[T], None] | None, value: T) -> None:
        """Run a window callback on a thread of its own: it may call back into this loop (``call``)."""
        if callback is not None:
            threading.Thread(target=callback, args=(value,), name="nanoclaw-restarted", daemon=True).start()


class _Closer:
    """Closes the window on request (Ctrl+C, SIGTERM, the host ending), also when it comes before the window shows.

    ``Window.destroy`` waits for the window to be shown, which would block the GUI loop if called from a signal
    handler too early; so a request before that is remembered and carried out when the window shows.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._lock = threading.Lock()
        self._window: Window | None = None
        self._closed = False

    def attach(self, window: Window) -> None:
        self._window = window
        window.events.shown += self._on_shown

    def request(self) -> None:
        self.requested.set()
        self._close()

    def _on_shown(self) -> None:
        if self._window is not None:
            self._window.events.shown.wait(5)  # handlers run just before the event is marked as set
        if self.requested.is_set():
            self._close()

    def _close(self) -> None:
        window = self._window
        with self._lock:
            if window is None or self._closed or not window.events.shown.is_set():
                return
            self._closed = True
        window.destroy()


@contextlib.contextmanager
def _on_signals(handler: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``handler`` on a thread of their own instead of raising; restored afterwards.

    A Python signal handler runs in the middle of whatever the main thread was doing, possibly while it holds a lock
    that ``handler`` needs: an Event's own lock while the headless loop waits on it, and ``handler`` sets that Event,
    so the app hung forever after SIGTERM. The handler therefore only writes a byte to a pipe, which takes no Python
    lock, and a thread reading the pipe logs the signal and calls ``handler``.
    """
    read_fd, write_fd = os.pipe()

    def relay() -> None:
        while data := os.read(read_fd, 1):
            log.info("received %s: stopping", signal.Signals(data[0]).name)
            handler()

    def handle(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.write(write_fd, bytes([signum]))

    thread = threading.Thread(target=relay, name="nanoclaw-signals", daemon=True)
    thread.start()
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        os.close(write_fd)  # the relay reads the end and returns
        thread.join(5)
        if not thread.is_alive():
            os.close(read_fd)


class _CaptureWebviewLog(logging.Filter):
    """pywebview logs each backend it fails to load with a traceback; keep one line of each for the reason."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}: {record.exc_info[1]}"
        self.lines.append(text)
        return False


class _OneLine(logging.Filter):
    """A record's exception as text on its line, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = None
            record.exc_info = None
        return True


def _tame_webview_logging() -> None:
    """Route pywebview's log into ours, one line per record (its own handler prints tracebacks to the terminal)."""
    logger = logging.getLogger("pywebview")
    if any(isinstance(f, _OneLine) for f in logger.filters):
        return
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.addFilter(_OneLine())


def gui_unavailable_reason() -> str | None:
    """Why no window can open here, or None when one can (loads the GUI backend; main thread only)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    try:
        import webview
        from webview.guilib import initialize
    except ImportError as err:
        return f"pywebview is not installed ({err}); {INSTALL_GUI}"
    _tame_webview_logging()
    capture = _CaptureWebviewLog()
    logger = logging.getLogger("pywebview")
    logger.addFilter(capture)
    try:
        backend = initialize()
    except webview.WebViewException as err:
        details = "; ".join(capture.lines)
        return f"no GUI backend for the window: {err}" + (f" ({details})" if details else "") + f"; {INSTALL_GUI}"
    except Exception as err:  # a backend that imports but breaks on setup (bad typelibs, a broken Qt, ...)
        return f"the GUI backend failed to load: {err!r}; {INSTALL_GUI}"
    finally:
        logger.removeFilter(capture)
    if backend.__name__.endswith(".gtk"):
        from gi.repository import Gdk

        if Gdk.Display.get_default() is None:
            where = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
            return f"cannot open the display {where}"
    return None


def run_app(settings: Settings, log_file: Path, *, background: bool = False,
            reload: Callable[[], Settings] | None = None) -> int:
    """``nanoclaw``: the window on the app, or headless with the URL when no window can open here.

    When this home's app already runs, its window is brought forward instead and this launch ends. ``background``
    (the start at login) keeps the window hidden behind the tray icon.
    """
    lock = InstanceLock(settings.paths)
    if not lock.acquire() and hand_over(lock, background=background):
        return 0
    code: int | None
    try:
        code = _run_instance(settings, log_file, background=background, reload=reload)
    except TryAgain:
        code = None
    finally:
        lock.release()
    if code is None:
        start_again()
    return code


def _run_instance(settings: Settings, log_file: Path, *, background: bool,
                  reload: Callable[[], Settings] | None = None) -> int:
    closer = _Closer()
    life = DesktopLife(quitting=closer.requested, request_quit=closer.request)
    host = HostThread(settings, on_exit=closer.request, reload=reload)
    control = ControlServer(life.command)  # a second launch can reach us from now on, even while the host starts
    control.start()
    try:
        write_record(settings.paths, InstanceRecord(pid=os.getpid(), kind="window", port=control.port,
                                                    token=control.token))
        with _on_signals(closer.request):
            host.launch()
            try:
                reason = gui_unavailable_reason()  # loads the GUI toolkit while the host comes up
                if not closer.requested.is_set():
                    if reason is None:
                        reason = _show_window(host, closer, life, log_file, background=background)
                    if reason is not None:
                        life.headless = True
                        host.wait_ready()
                        _serve_headless(host, closer, reason, log_file)
            finally:
                life.close(host)
                host.stop()
    finally:
        control.stop()
    return 1 if host.failed else 0


def _show_window(host: HostThread, closer: _Closer, life: DesktopLife, log_file: Path, *,
                 background: bool) -> str | None:
    """Open the window and block until the app quits; returns why it could not open, or None after it closed.

    The window opens at once on a "Starting" page from disk and goes to the app when the host answers, so the user
    sees something within the toolkit's own start time. A host that fails to start leaves the window on a page
    saying why, in words; once the user closes it, the error is raised here for the caller to report.
    """
    import webview

    life.start_tray()
    hidden = life.start_hidden(background)
    again = _TryAgainButton()
    window = webview.create_window(
        TITLE, html=resource("ui", "static", "starting.html").read_text(encoding="utf-8"), width=SIZE[0],
        height=SIZE[1], min_size=MIN_SIZE, background_color="#FFFFFF", text_select=True, hidden=hidden,
        js_api=again,
    )
    if window is None:
        return "the window was refused by the GUI backend"

    opened = threading.Event()
    failed: list[BaseException] = []

    def on_load() -> None:
        path = urlsplit(window.get_current_url() or "")
        if host.url and not opened.is_set() and path.scheme.startswith("http"):  # one line per launch, not per page
            opened.set()
            log.info("window opened on %s", path.path or "/")

    from nanoclaw_app.services.auth import issue_login_token

    def open_app() -> None:
        """Wait for the host, then sign the window in (on pywebview's worker thread, once the GUI loop runs)."""
        try:
            url = host.wait_ready()
            sign_in(url)
        except BaseException as err:
            log.error("NanoClaw could not start: %s", err)
            show_failure(err)

    def sign_in(url: str) -> None:
        assert host.host is not None
        token = host.call(issue_login_token(host.host.db))
        window.load_url(f"{url}login?token={token}")
        life.watch(host)

    def show_failure(err: BaseException) -> None:
        failed.append(err)
        closer.requested.set()  # closing the window now quits
        again.offer(closer.request)
        window.load_html(_failure_page(err, log_file))
        life.open_window()  # also when started hidden at login: the user must see why nothing works

    host.on_restarted = sign_in  # a new host may serve at another address: the window signs in there
    host.on_restart_failed = show_failure

    window.events.loaded += on_load
    closer.attach(window)
    life.attach(window, hidden=hidden)
    try:
        webview.start(open_app, private_mode=True)
    except webview.WebViewException as err:
        return f"the window could not open: {err}"
    log.info("window closed")
    if failed:
        if again.pressed:
            raise TryAgain from failed[0]
        raise failed[0]
    return None


class TryAgain(Exception):
    """The user asked to start the app again after a failed start (raised once the window has closed)."""


class _TryAgainButton:
    """pywebview's ``js_api`` for the failure page: its button closes the window and asks for a fresh start.

    Only public methods are reachable from the page, and this one does nothing until a start has failed.
    """

    def __init__(self) -> None:
        self._close: Callable[[], None] | None = None
        self._pressed = threading.Event()

    @property
    def pressed(self) -> bool:
        """Whether the button was pressed."""
        return self._pressed.is_set()

    def offer(self, close: Callable[[], None]) -> None:
        """Arm the button (the start failed); ``close`` closes the window."""
        self._close = close

    def try_again(self) -> None:
        """The page's button (pywebview's thread)."""
        if self._close is not None:
            log.info("starting again, as asked on the failure page")
            self._pressed.set()
            self._close()


def _failure_page(err: BaseException, log_file: Path) -> str:
    """The window's page for a host that could not start: the reason in words, and where the details are."""
    reason = str(err) if isinstance(err, NanoClawError) else f"an unexpected error ({type(err).__name__}: {err})"
    reason = reason.rstrip(".")
    page = resource("ui", "static", "start-failed.html").read_text(encoding="utf-8")
    return page.replace("{reason}", html.escape(reason)).replace("{log}", html.escape(str(log_file)))


def _serve_headless(host: HostThread, closer: _Closer, reason: str, log_file: Path) -> None:
    """No window: keep serving until Ctrl+C (or SIGTERM), and say where the app is and how to sign in."""
    from nanoclaw_app.terminal_command import sign_in_hint

    log.warning("no app window: %s", reason)
    print(f"NanoClaw {__version__} is running: {host.url}", flush=True)
    print(f"no app window: {reason}.", flush=True)
    print(sign_in_hint(), flush=True)
    print(f"log: {log_file}  (Ctrl+C to stop)", flush=True)
    while host.alive() and not closer.requested.wait(1.0):  # a timeout keeps Ctrl+C working on Windows too
        pass
