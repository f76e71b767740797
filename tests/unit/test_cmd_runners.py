"""The command model and the local, plan and SSH runners."""

from __future__ import annotations

import logging
import shlex
import sys

import pytest

from kvmops.cmd import MASK, Cmd, change, read, strip_noise
from kvmops.errors import CommandFailed, CommandTimeout, InvalidInput
from kvmops.runners import LocalRunner, PlanRunner, SSHRunner
from kvmops.sshtarget import SSHTarget
from tests.support.secrets import PASSWORDS

POLKIT = ("Error registering authentication agent: GDBus.Error:org.freedesktop.PolicyKit1.Error.Failed: "
          "Cannot determine user of subject (polkit-error-quark, 0)")


def test_cmd_is_an_argv_tuple() -> None:
    with pytest.raises(TypeError):
        Cmd("lvs -a")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Cmd(())
    with pytest.raises(ValueError, match="NUL"):
        read("echo", "a\0b")


def test_display_masks_secrets_and_secret_stdin() -> None:
    cmd = change("chpasswd", "--user", "s3cret", secret=frozenset({2}), stdin="root:pw", stdin_secret=True)
    shown = cmd.display()
    assert "s3cret" not in shown and "pw" not in shown
    assert shown == f"chpasswd --user {MASK} <<< {MASK}"
    assert read("echo", "a b").display() == "echo 'a b'"


def test_noise_is_stripped() -> None:
    text = f"{POLKIT}\n Id   Name\n  File descriptor 62 (pipe:[23913]) leaked on lvs invocation. Parent PID 2: bash\n"
    assert strip_noise(text) == " Id   Name\n"


def test_local_runner_runs_without_shell_and_records() -> None:
    runner = LocalRunner("here")
    res = runner.run(read("printf", "%s", "a;b $(x)"))
    assert res.stdout == "a;b $(x)" and res.returncode == 0 and res.executed
    assert runner.records[-1].command == "printf %s 'a;b $(x)'"
    assert runner.records[-1].returncode == 0 and runner.records[-1].host == "here"


def test_local_runner_feeds_stdin_and_strips_noise() -> None:
    code = f"import sys; print({POLKIT!r}, file=sys.stderr); print(sys.stdin.read().upper())"
    res = LocalRunner().run(read(sys.executable, "-c", code).__class__(
        (sys.executable, "-c", code), stdin="hello"))
    assert res.stdout.strip() == "HELLO"
    assert res.stderr == ""


def test_failure_names_argv_code_stderr_and_host() -> None:
    with pytest.raises(CommandFailed) as err:
        LocalRunner("kvmhost").run(read("ls", "/nonexistent-kvmops"))
    text = str(err.value)
    assert "on kvmhost" in text and "`ls /nonexistent-kvmops` exited 2" in text
    assert "No such file" in text
    assert err.value.returncode == 2


def test_missing_program_is_a_clear_failure() -> None:
    with pytest.raises(CommandFailed, match="not installed"):
        LocalRunner().run(read("kvmops-no-such-tool"))


def test_check_false_and_ok_codes() -> None:
    assert LocalRunner().run(read("false"), check=False).returncode == 1
    assert LocalRunner().run(read("false", ok=(0, 1))).ok


def test_timeout_kills() -> None:
    with pytest.raises(CommandTimeout, match="killed after 0.2 s"):
        LocalRunner().run(read("sleep", "5", timeout=0.2))


def test_on_line_streams_progress_split_on_cr() -> None:
    lines: list[str] = []
    LocalRunner().run(read("printf", "a\rb\nc"), on_line=lines.append)
    assert lines == ["a", "b", "c"]


def test_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kvmops.cmd")
    LocalRunner().run(Cmd(("echo", PASSWORDS["masked-arg"]), secret=frozenset({1})))
    assert PASSWORDS["masked-arg"] not in caplog.text and MASK in caplog.text


def test_plan_runner_never_executes_mutations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "made"
    plan = PlanRunner(LocalRunner())
    res = plan.run(change("touch", str(target)))
    assert not target.exists() and not res.executed
    assert plan.run(read("echo", "fact")).stdout == "fact\n"
    assert [r.executed for r in plan.records] == [False, True]
    assert not plan.executes_mutations


def test_ssh_argv_verifies_host_keys_and_quotes_once() -> None:
    runner = SSHRunner(SSHTarget("root@kvm.example", port=2222, identity="/k", known_hosts="/kh"))
    try:
        argv = runner.ssh_argv()
        assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
        assert "UserKnownHostsFile=/kh" in argv and argv[argv.index("-p") + 1] == "2222"
        remote = runner.remote_command(read("lvs", "a b", "$(reboot)"))
        assert shlex.split(remote)[-3:] == ["lvs", "a b", "$(reboot)"]
        assert remote.startswith("env LVM_SUPPRESS_FD_WARNINGS=1 LC_ALL=C ")
    finally:
        runner.close()


@pytest.mark.parametrize("opt", ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"])
def test_ssh_refuses_to_switch_host_key_checking_off(opt: str) -> None:
    with pytest.raises(InvalidInput, match="host key"):
        SSHRunner(SSHTarget("root@h"), extra_options=(opt,))


@pytest.mark.parametrize("dest", ["", "-oProxyCommand=x", "a b"])
def test_ssh_target_validated(dest: str) -> None:
    with pytest.raises(InvalidInput):
        SSHTarget(dest)
