"""The thin libvirt adapter: the only module that imports ``libvirt``.

libvirt errors are translated by ``get_error_code()`` into kvmops errors that say what to do;
nothing is caught wholesale. Every libvirt call of kvmops goes through :class:`Virt`.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import libvirt

from kvmops.cmd import strip_noise
from kvmops.errors import KvmopsError, LibvirtError, NotFound
from kvmops.guests.domain import DomainInfo, HostLimits

T = TypeVar("T")
LineSink = Callable[[str], None]


def _silence(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; kvmops reports them itself."""


libvirt.registerErrorHandler(_silence, None)

NO_SUPPORT = libvirt.VIR_ERR_NO_SUPPORT
AGENT_UNRESPONSIVE = libvirt.VIR_ERR_AGENT_UNRESPONSIVE
NO_CONSOLE_DRIVERS = frozenset({"TEST"})  # ``getType()`` of drivers without console streams
ESCAPE = b"\x1d"  # CTRL-]: detaches from a console, as in virsh console

_HINTS: dict[int, str] = {
    libvirt.VIR_ERR_NO_DOMAIN: "no such guest: check the name with `kvmops guest list`",
    libvirt.VIR_ERR_NO_SUPPORT: "this libvirt driver does not support the call",
    libvirt.VIR_ERR_OPERATION_INVALID: "the guest is not in a state that allows this",
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: (
        "the QEMU guest agent is not running inside the guest: install and start "
        "qemu-guest-agent in the guest, or use the serial console instead"
    ),
    libvirt.VIR_ERR_SYSTEM_ERROR: "libvirt could not reach the host: is libvirtd running?",
    libvirt.VIR_ERR_NO_CONNECT: "libvirt could not reach the host: is libvirtd running?",
    libvirt.VIR_ERR_AUTH_FAILED: "libvirt refused the credentials: connect as root",
    libvirt.VIR_ERR_AUTH_UNAVAILABLE: "libvirt refused the credentials: connect as root",
    libvirt.VIR_ERR_OPERATION_DENIED: "libvirt refused the call: connect as root",
    libvirt.VIR_ERR_OPERATION_TIMEOUT: "the operation timed out: try again",
    libvirt.VIR_ERR_XML_ERROR: "libvirt rejected the domain XML: check it with `kvmops guest xml`",
    libvirt.VIR_ERR_XML_DETAIL: "libvirt rejected the domain XML: check it with `kvmops guest xml`",
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: "this host's QEMU/libvirt cannot run that configuration",
    libvirt.VIR_ERR_DOM_EXIST: "a guest of that name or UUID exists already",
    libvirt.VIR_ERR_AGENT_UNSYNCED: "the QEMU guest agent is starting up: try again in a moment",
}

STATES: dict[int, str] = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "in shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}


def translate(exc: libvirt.libvirtError, what: str, hints: Mapping[int, str] | None = None) -> KvmopsError:
    """A kvmops error for a libvirt error, chosen by its error code.

    ``hints`` overrides the advice for some codes (e.g. what to do instead of openConsole).
    """
    code = exc.get_error_code()
    message = strip_noise(exc.get_error_message() or str(exc)).strip()
    hint = (hints or {}).get(code) or _HINTS.get(code)
    text = f"{what}: {message}" + (f" ({hint})" if hint else "")
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        err: KvmopsError = NotFound(text)
    else:
        err = LibvirtError(text)
    err.code = code  # type: ignore[attr-defined]
    return err


_gc_lock = threading.Lock()
_gc_holds = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _error_kept() -> Iterator[None]:
    """No cyclic garbage collection while a libvirt call runs and its error is read back.

    libvirt keeps the last error per thread, and any libvirt call resets it: also the
    ``virDomainFree`` of a domain object that the garbage collector happens to free between
    the failed call and the binding's ``virGetLastError()`` (the allocations of the error
    handler's arguments can start a collection). The error then arrives without its code
    ("virDomainOpenConsole() failed") and cannot be translated; in a long session (many
    libvirt objects, the event loop's callbacks) that happens. Reference counting still frees
    everything at once; only the cycle collector waits for the call to return.
    """
    global _gc_holds, _gc_was_enabled
    with _gc_lock:
        if _gc_holds == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holds += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holds -= 1
            if _gc_holds == 0 and _gc_was_enabled:
                gc.enable()


_loop_lock = threading.Lock()
_loop_started = False


def _event_loop() -> None:
    """libvirt's default event loop in a daemon thread (console streams, keepalive).

    Registered lazily before the first connection opens, never at import.
    """
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


class Virt:
    """A lazily opened libvirt connection with translated errors."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            _event_loop()
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise translate(exc, f"cannot connect to libvirt at {self.uri}") from None
        return self._conn

    def call(self, what: str, fn: Callable[..., T], *args: Any,
             hints: Mapping[int, str] | None = None) -> T:
        """``fn(*args)`` with a libvirt error translated into a kvmops error about ``what``.

        The error code is kept for the translation (:func:`_error_kept`), whatever ran before.
        """
        with _error_kept():
            try:
                return fn(*args)
            except libvirt.libvirtError as exc:
                raise translate(exc, what, hints) from None

    @property
    def driver(self) -> str:
        """The connection's driver as libvirt names it (``QEMU``, ``TEST``, ...)."""
        return str(self.call("driver type", self.conn.getType)).upper()

    def domain(self, name: str) -> Any:
        """The domain called ``name``; NotFound when libvirt has none."""
        return self.call(f"guest {name!r} on {self.uri}", self.conn.lookupByName, name)

    def exists(self, name: str) -> bool:
        try:
            self.domain(name)
        except NotFound:
            return False
        return True

    # -- facts -------------------------------------------------------------------------------

    def domains(self) -> tuple[DomainInfo, ...]:
        """Every guest (running or not) with its live XML: one listing, sorted by name."""
        doms = self.call("list guests", self.conn.listAllDomains, 0)
        out = [self._info(d) for d in doms]
        return tuple(sorted(out, key=lambda i: i.name))

    def _info(self, dom: Any) -> DomainInfo:
        name = dom.name()
        what = f"guest {name!r}"
        state = self.call(what, dom.state)[0]
        return DomainInfo(
            name=name,
            state=STATES.get(state, f"state {state}"),
            active=bool(self.call(what, dom.isActive)),
            autostart=bool(self.call(what, dom.autostart)),
            persistent=bool(self.call(what, dom.isPersistent)),
            xml=self.call(what, dom.XMLDesc, 0),
            inactive_xml=self.call(what, dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE),
        )

    def info(self, name: str) -> DomainInfo:
        return self._info(self.domain(name))

    def inactive_xml(self, name: str) -> str:
        """The persistent definition (what the next start uses)."""
        return str(self.call(f"guest {name!r}", self.domain(name).XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE))

    def limits(self, domain_type: str) -> HostLimits:
        """Host memory and CPUs (``virNodeGetInfo``) and the vCPU maximum of ``domain_type``."""
        info = self.call("host facts", self.conn.getInfo)
        try:
            max_vcpus = int(self.conn.getMaxVcpus(domain_type))
        except libvirt.libvirtError:
            max_vcpus = int(info[2])  # a driver without the call: the host's CPUs bound it anyway
        return HostLimits(memory_kib=int(info[1]) * 1024, cpus=int(info[2]), max_vcpus=max_vcpus)

    # -- lifecycle ---------------------------------------------------------------------------

    def uuid(self, name: str) -> str:
        return str(self.call(f"guest {name!r}", self.domain(name).UUIDString))

    def define(self, xml: str, name: str) -> None:
        self.call(f"define guest {name!r}", self.conn.defineXML, xml)

    def start(self, name: str) -> None:
        self.call(f"start guest {name!r}", self.domain(name).create)

    def set_autostart(self, name: str, on: bool) -> None:
        self.call(f"autostart of guest {name!r}", self.domain(name).setAutostart, 1 if on else 0)

    def shutdown(self, name: str) -> None:
        """Ask the guest to power off (ACPI power button, like ``virsh shutdown``)."""
        self.call(f"shut down guest {name!r}", self.domain(name).shutdown)

    def destroy(self, name: str) -> None:
        self.call(f"destroy guest {name!r}", self.domain(name).destroy)

    def undefine(self, name: str) -> None:
        self.call(f"undefine guest {name!r}", self.domain(name).undefine)

    def eject(self, name: str, device_xml: str) -> None:
        """Empty a drive of the running guest (``virsh change-media NAME sda --eject --live``):
        ``device_xml`` is the drive's ``<disk>`` without a ``<source>``."""
        self.call(f"eject a CD-ROM of guest {name!r}", self.domain(name).updateDeviceFlags, device_xml,
                  libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def block_resize(self, name: str, disk: str, size: int) -> None:
        """Tell the running guest that its disk ``disk`` (``vda``) grew to ``size`` bytes
        (``virsh blockresize``): otherwise it sees the old size until its next start."""
        self.call(f"resize disk {disk} of guest {name!r}", self.domain(name).blockResize, disk, size,
                  libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    def guest_info(self, name: str) -> dict[str, Any]:
        """``virsh guestinfo``: needs the QEMU guest agent inside the guest."""
        hints = {
            NO_SUPPORT: "this libvirt driver cannot ask a guest agent; on the real host use "
            "`virsh guestinfo NAME`",
        }
        info = self.call(f"guest info of {name!r}", self.domain(name).guestInfo, 0, 0, hints=hints)
        return dict(info)

    def open_console(self, name: str) -> ConsoleStream:
        """The guest's serial console as a two-way stream (``virDomainOpenConsole``).

        Decided by the driver, not by an error message: a driver without console streams
        (the test driver) is refused up front with what to do instead. Someone attached
        already (``virsh console``) is not pushed off: that fails with a hint.
        """
        hints = {
            NO_SUPPORT: f"this libvirt driver cannot open consoles; attach from a shell with "
            f"`virsh console {name}` (CTRL-] detaches)",
            libvirt.VIR_ERR_OPERATION_FAILED: "someone is attached to the console (virsh console?): "
            "detach there with CTRL-] first",
        }
        dom = self.domain(name)
        if self.driver in NO_CONSOLE_DRIVERS:
            refused = LibvirtError(f"console of guest {name!r}: {hints[NO_SUPPORT]}")
            refused.code = NO_SUPPORT  # type: ignore[attr-defined]
            raise refused
        stream = self.call("open a stream", self.conn.newStream, libvirt.VIR_STREAM_NONBLOCK)
        try:
            self.call(f"console of guest {name!r}", dom.openConsole, None, stream, 0, hints=hints)
        except KvmopsError:
            _close_stream(stream)
            raise
        return ConsoleStream(name, stream)

    def read_console(self, name: str, seconds: float, on_line: LineSink | None = None,
                     until: Callable[[str], bool] | None = None) -> str:
        """Read the serial console for ``seconds``; returns the text.

        ``until(text so far)`` returning True ends the reading early (e.g. a login prompt: a
        guest under TCG may need minutes to get there). Does not steal the console from an
        attached ``virsh console`` session.
        """
        reader = _ConsoleReader(on_line)
        with self.open_console(name) as console:
            console.start(reader.add)
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                if until is not None and until(reader.text(flush=False)):
                    break
                time.sleep(min(left, 0.25) if until is not None else left)
        return reader.text()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class ConsoleStream:
    """An open console stream: bytes from the guest go to a callback (in libvirt's event
    thread), bytes to the guest go through :meth:`send`. Close it (or use ``with``)."""

    def __init__(self, name: str, stream: Any) -> None:
        self.name = name
        self._stream = stream
        self._on_data: Callable[[bytes], None] | None = None
        self.closed = threading.Event()  # the guest closed the console (it stopped), or close()

    def __enter__(self) -> ConsoleStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, on_data: Callable[[bytes], None]) -> None:
        """Deliver what the guest prints to ``on_data`` from now on."""
        self._on_data = on_data
        self._stream.eventAddCallback(libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_HANGUP
                                      | libvirt.VIR_STREAM_EVENT_ERROR, self._event, None)

    def _event(self, stream: Any, events: int, _opaque: object) -> None:
        while True:
            try:
                data = stream.recv(4096)
            except libvirt.libvirtError:
                self.closed.set()
                return
            if data == -2:
                break  # nothing more now
            if not isinstance(data, bytes) or not data:
                self.closed.set()  # b"": the guest closed the console
                return
            if self._on_data is not None:
                self._on_data(data)
        if events & (libvirt.VIR_STREAM_EVENT_HANGUP | libvirt.VIR_STREAM_EVENT_ERROR):
            self.closed.set()

    def send(self, data: bytes) -> None:
        """Type ``data`` into the console (waits while the stream is full)."""
        view = memoryview(data)
        while view and not self.closed.is_set():
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as exc:
                self.closed.set()
                raise translate(exc, f"console of guest {self.name!r}") from None
            if sent == -2:
                time.sleep(0.01)  # non-blocking stream full: the guest reads slower than we type
                continue
            view = view[sent:]

    def close(self) -> None:
        self.closed.set()
        _close_stream(self._stream)


class _ConsoleReader:
    """Collects console bytes in the event thread; passes whole lines on."""

    def __init__(self, on_line: LineSink | None) -> None:
        self.chunks: list[bytes] = []
        self.pending = ""
        self.on_line = on_line
        self.lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self.lock:
            self.chunks.append(data)
            self.pending += data.decode("utf-8", "replace").replace("\r", "")
            *lines, self.pending = self.pending.split("\n")
        if self.on_line is not None:
            for line in lines:
                if line.strip():
                    self.on_line(line)

    def text(self, flush: bool = True) -> str:
        """Everything read so far; ``flush`` also passes an unfinished last line on."""
        with self.lock:
            if flush and self.on_line is not None and self.pending.strip():
                self.on_line(self.pending)
                self.pending = ""
            return b"".join(self.chunks).decode("utf-8", "replace").replace("\r", "")


def _close_stream(stream: Any) -> None:
    for step in (stream.eventRemoveCallback, stream.abort):
        with contextlib.suppress(libvirt.libvirtError):
            step()
