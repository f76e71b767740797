"""The thin libvirt adapter: the only module that imports ``libvirt``.

libvirt errors are translated by ``get_error_code()`` into kvmops errors that say what to do;
nothing is caught wholesale.
"""

from __future__ import annotations

from typing import Any

import libvirt

from kvmops.errors import KvmopsError, LibvirtError, NotFound


def _silence(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; kvmops reports them itself."""


libvirt.registerErrorHandler(_silence, None)

_HINTS: dict[int, str] = {
    libvirt.VIR_ERR_NO_DOMAIN: "no such guest: check the name with `kvmops guest list`",
    libvirt.VIR_ERR_NO_SUPPORT: "this libvirt driver does not support the call",
    libvirt.VIR_ERR_OPERATION_INVALID: "the guest is not in a state that allows this",
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: (
        "the QEMU guest agent is not running inside the guest: install and start "
        "qemu-guest-agent in the guest, or use the serial console instead"
    ),
    libvirt.VIR_ERR_SYSTEM_ERROR: "libvirt could not reach the host: is libvirtd running?",
    libvirt.VIR_ERR_AUTH_FAILED: "libvirt refused the credentials: connect as root",
    libvirt.VIR_ERR_OPERATION_TIMEOUT: "the operation timed out: try again",
}


def translate(exc: libvirt.libvirtError, what: str) -> KvmopsError:
    """A kvmops error for a libvirt error, chosen by its error code."""
    code = exc.get_error_code()
    message = exc.get_error_message() or str(exc)
    hint = _HINTS.get(code)
    text = f"{what}: {message}" + (f" ({hint})" if hint else "")
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return NotFound(text)
    err = LibvirtError(text)
    err.code = code  # type: ignore[attr-defined]
    return err


class Virt:
    """A lazily opened libvirt connection with translated errors."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise translate(exc, f"cannot connect to libvirt at {self.uri}") from None
        return self._conn

    def domain(self, name: str) -> Any:
        """The domain called ``name``; NotFound when libvirt has none."""
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            raise translate(exc, f"guest {name!r} on {self.uri}") from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
