"""The lab's error: what went wrong, and the command that fixes it."""

from kvmops.errors import KvmopsError


class LabError(KvmopsError):
    """The lab could not be built, booted, reached or stopped; the message says what to do."""
