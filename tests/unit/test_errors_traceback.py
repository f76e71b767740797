"""A failed command's message keeps the tool's own words and leaves out its Python traceback
(borg prints one after "Data integrity error: ..."; captured from the lab's borg 1.2.4)."""

from __future__ import annotations

from kvmops.errors import CommandFailed

BORG_STDERR = """Data integrity error: Segment entry checksum mismatch [segment 6, offset 1764]
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/borg/archiver.py", line 5213, in main
    exit_code = archiver.run(args)
                ^^^^^^^^^^^^^^^^^^
borg.helpers.errors.IntegrityError: Data integrity error: Segment entry checksum mismatch [segment 6, offset 1764]

Borg: 1.2.4  Python: CPython 3.11.2 msgpack: 1.0.3 fuse: None [pyfuse3,llfuse]
PID: 2317  CWD: /root
SSH_ORIGINAL_COMMAND: None"""


def test_the_tools_message_stays_and_its_traceback_goes() -> None:
    text = str(CommandFailed("kvmlab", ["borg", "extract", "--stdout", "/srv/borg::a", "dev"], 2, BORG_STDERR))
    assert text.splitlines()[1].strip().startswith("Data integrity error: Segment entry checksum mismatch")
    assert "borg.helpers.errors.IntegrityError" in text and "archiver.py" not in text and "PID:" not in text
    assert "(a Python traceback of" in text


def test_stderr_without_a_traceback_is_shown_as_it_is() -> None:
    text = str(CommandFailed("kvmlab", ["lvs"], 5, '  Volume group "rl_build" not found'))
    assert text.endswith('Volume group "rl_build" not found')
