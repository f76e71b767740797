"""Tweak plans against a fake image (a dict of files answering the chroot reads)."""

from __future__ import annotations

from kvmops.cmd import MASK, Cmd, Result
from kvmops.images import tweaks as t
from kvmops.images.imagefs import ImageFs
from kvmops.images.passwords import Password, sha512_crypt
from kvmops.runners.base import LineSink, Runner

ROOT = "/run/kvmops/mnt-test"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


class FakeImage(Runner):
    """Answers ``chroot ROOT cat|stat|readlink|test`` from ``files``; records the rest."""

    def __init__(self, files: dict[str, str], stats: dict[str, str] | None = None,
                 links: dict[str, str] | None = None) -> None:
        super().__init__()
        self.host = "fake"
        self.files, self.stats, self.links = files, stats or {}, links or {}

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        a = cmd.argv
        if cmd.mutates or a[:2] != ("chroot", ROOT):
            return Result(cmd, self.host, 0, "", "", 0.0, executed=False)
        verb, path = a[2], a[-1]
        if verb == "cat":
            return self._answer(cmd, self.files.get(path))
        if verb == "stat":
            st = self.stats.get(path) or ("directory|755|0|0" if path in self.files or path in self.stats else None)
            return self._answer(cmd, st and st + "\n")
        if verb == "readlink":
            return self._answer(cmd, self.links.get(path))
        if verb == "test":
            return self._answer(cmd, "" if path in self.files or path in self.stats or path in self.links else None)
        raise AssertionError(f"unexpected read {a}")

    def _answer(self, cmd: Cmd, out: str | None) -> Result:
        return Result(cmd, self.host, 0 if out is not None else 1, out or "", "", 0.0)


PASSWD = "root:x:0:0:root:/root:/bin/bash\ncentos:x:1000:1000::/home/centos:/bin/bash\n"


def _img(**kw: object) -> ImageFs:
    files = {"/etc/passwd": PASSWD, "/etc/shadow": "root:*:1::::::\ncentos:!:1::::::\n",
             "/usr/sbin/chpasswd": "", "/usr/sbin/visudo": "", "/home/centos": ""}
    files.update(kw.get("files", {}))  # type: ignore[call-overload]
    return ImageFs(FakeImage(files, kw.get("stats"), kw.get("links")), ROOT)  # type: ignore[arg-type]


def test_password_step_masks_the_hash_and_converges() -> None:
    pw = Password.clear("centos", "hunter2-long")
    plan = t.SetPassword(pw).plan(_img())
    (step,) = plan.steps
    assert step.cmd is not None and step.cmd.argv[-2:] == ("chpasswd", "-e") and step.cmd.stdin_secret
    assert step.cmd.stdin is not None and step.cmd.stdin.startswith("centos:$6$")
    text = plan.render()
    assert "hunter2" not in text and "$6$" not in text and MASK in text
    done = t.SetPassword(pw).plan(_img(files={"/etc/shadow": f"centos:{sha512_crypt('hunter2-long')}:1::::::\n"}))
    assert done.empty and "already so" in done.steps[0].reason


def test_authorized_keys_steps_use_image_ids_and_modes() -> None:
    plan = t.AuthorizedKeys("centos", (KEY,)).plan(_img())
    argvs = [s.cmd.argv[2:] for s in plan.steps if s.cmd]
    assert argvs[:3] == [("mkdir", "-p", "/home/centos/.ssh"), ("chown", "1000:1000", "/home/centos/.ssh"),
                         ("chmod", "700", "/home/centos/.ssh")]  # busybox images have no `install`
    assert ("chown", "1000:1000", "/home/centos/.ssh/authorized_keys.kvmops-new") in argvs
    assert ("chmod", "600", "/home/centos/.ssh/authorized_keys.kvmops-new") in argvs
    assert argvs[-1] == ("mv", "-f", "/home/centos/.ssh/authorized_keys.kvmops-new",
                         "/home/centos/.ssh/authorized_keys")


def test_authorized_keys_already_so() -> None:
    img = _img(files={"/home/centos/.ssh/authorized_keys": KEY + "\n"},
               stats={"/home/centos/.ssh": "directory|700|1000|1000",
                      "/home/centos/.ssh/authorized_keys": "regular file|600|1000|1000"})
    assert t.AuthorizedKeys("centos", (KEY,)).plan(img).empty


def test_sudoers_checked_before_moved_in() -> None:
    plan = t.Sudoers("centos").plan(_img(files={"/etc/sudoers": "@includedir /etc/sudoers.d\n"},
                                          stats={"/etc/sudoers.d": "directory|750|0|0"}))
    argvs = [s.cmd.argv[2:] for s in plan.steps if s.cmd]
    check = argvs.index(("/usr/sbin/visudo", "-c", "-q", "-f", "/etc/sudoers.d/centos.kvmops-new"))
    assert check == len(argvs) - 2 and argvs[-1][0] == "mv"
    assert not plan.notes


def test_getty_and_selinux() -> None:
    link = {t.GETTY_LINK: t.GETTY_TARGET}
    assert t.SerialGetty().plan(_img(links=link)).empty
    plan = t.SerialGetty().plan(_img(files={t.GETTY_TARGET: ""}))
    assert plan.steps[-1].cmd is not None and plan.steps[-1].cmd.argv[2:] == (
        "ln", "-sfn", t.GETTY_TARGET, t.GETTY_LINK)
    sel = t.SelinuxRelabel().plan(_img(files={"/etc/selinux/config": "SELINUX=enforcing\n"}))
    assert sel.steps[0].cmd is not None and sel.steps[0].cmd.argv[2:] == ("touch", "/.autorelabel")
    assert t.SelinuxRelabel().plan(_img()).empty


def test_grub_without_tools_says_so() -> None:
    plan = t.GrubSerial().plan(_img(files={"/etc/default/grub": 'GRUB_CMDLINE_LINUX=""\n'}))
    assert any("NOT regenerated" in n for n in plan.notes)
    assert plan.steps[0].cmd is not None and plan.steps[0].cmd.argv[2] == "dd"
