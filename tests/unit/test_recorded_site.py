"""The demo site is a facts value: the recorded host as data, read with the live parsers;
plan-only (apply and every command on the host refused); sites resolved one way everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.cmd import Cmd, Result, change, read
from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.facts import LiveSource, read_facts, source_of
from kvmops.guests import hostfile
from kvmops.host import Host, connect
from kvmops.hostfacts import Wanted
from kvmops.images.probe import qemu_img_info
from kvmops.lvm.facts import lvs_cmd, vgs_cmd
from kvmops.net import iplink, nmcli
from kvmops.net.registry import parse_registry, registry_path
from kvmops.runners.base import LineSink, Runner
from kvmops.runners.recorded import NotRecorded, PlanOnly, RecordedRunner, load_recorded
from kvmops.site import SITE_ENV, Site, load_site, resolve_site, shipped_sites

IMAGE = "/var/lib/kvmops/images/Rocky-9-GenericCloud.latest.x86_64.qcow2"


@pytest.fixture
def site() -> Site:
    return load_site(resolve_site("demo"))


@pytest.fixture
def host(site: Site) -> Iterator[Host]:
    h = connect(site)
    yield h
    h.close()


def test_the_demo_site_names_its_recorded_facts(site: Site) -> None:
    assert site.recorded.endswith("sites/demo/facts.toml") and Path(site.recorded).is_file()
    assert site.libvirt_uri == f"test://{Path(site.path).resolve().parent}/demo/node.xml"
    assert site.replay == site.recorded  # the former name, still asked by some runbooks


def test_the_demo_host_as_facts(host: Host) -> None:
    """The demo's content the manual's examples rely on."""
    facts = read_facts(host, Wanted(net=True))
    assert {lv.name for lv in facts.lvm.lvs} == {"root", "home", "opt", "vminflux", "vminflux-20261120T0900Z",
                                                 "vmold", "vmtest1", "vmtest1-20261124T0815Z"}
    assert {d.name: d.active for d in facts.domains} == {"test1": True, "influx": False}
    assert facts.lv_in_use(facts.lvm.need("vmtest1")) == "it is the disk of the running guest test1"
    assert facts.lv_in_use(facts.lvm.need("vmold")) is None
    assert facts.lvm.need("vmtest1-20261124T0815Z").data_percent == pytest.approx(84.37)
    assert facts.net.bridges() == ("virbr1.2368", "virbr1.68", "virbr1.99")
    assert {p.interface_name for p in facts.net.bridge_profiles("virbr1.2368")} == {"virbr1.2368"}
    assert facts.bridges_in_use["virbr1.2368"].startswith("guest test1 (running)")


def test_files_paths_and_images_recorded_or_missing(host: Host, site: Site) -> None:
    kept, new, registry = hostfile.xml_path(site, "test1"), hostfile.xml_path(site, "web3"), registry_path(site)
    facts = read_facts(host, Wanted(files=(kept, new, registry), images=(IMAGE,),
                                    paths=("/root/kvm", "/root/kvm/", "/var/lib/kvmops/images", "/nope", "/root/kv")))
    assert "<name>test1</name>" in (facts.file(kept) or "") and facts.file(new) is None
    assert {str(e.ip): e.guest for e in parse_registry(facts.file(registry) or "", registry).entries} == {
        "10.5.67.20": "influx", "10.5.68.10": "test1"}
    assert facts.paths == {"/root/kvm": True, "/root/kvm/": True, "/var/lib/kvmops/images": True,
                           "/nope": False, "/root/kv": False}
    assert (facts.image(IMAGE).format, facts.image(IMAGE).virtual_size) == ("qcow2", 10 << 30)


@pytest.mark.parametrize("path", ["/var/lib/kvmops/images/web3.qcow2", "web3.qcow2"])
def test_an_image_not_recorded_is_not_found_naming_the_demos_images(host: Host, path: str) -> None:
    with pytest.raises(NotFound, match=f"image {path} does not exist on demo .recorded; its images: {IMAGE}"):
        read_facts(host, Wanted(images=(path,)))
    with pytest.raises(InvalidInput, match="bad image path ''"):  # as the live probe says
        read_facts(host, Wanted(images=("",)))


class Answers(Runner):
    """A live host's runner answering the commands the readers run with the recorded outputs."""

    host = "live"

    def __init__(self, outputs: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        super().__init__()
        self.outputs = outputs

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        code, out, err = self.outputs[cmd.argv]
        return Result(cmd, self.host, code, out, err, 0.0)


def test_recorded_facts_equal_a_live_read_of_the_same_outputs(site: Site, host: Host) -> None:
    """One set of readers: the recorded runner answers exactly what a live host's runner
    printing the recorded outputs answers; the same parsers make the same facts."""
    rec = load_recorded(site.recorded)
    assert rec.net is not None
    uuids = tuple(r.uuid for r in nmcli.parse_list(rec.net["connections"]))
    missing = (1, "", "cat: x: No such file or directory\n")
    outputs = {
        vgs_cmd().argv: (0, rec.lvm["vgs"], ""), lvs_cmd(site.vg).argv: (0, rec.lvm["lvs"], ""),
        iplink.addresses_cmd().argv: (0, rec.net["links"], ""),
        iplink.bridge_vlans_cmd().argv: (0, rec.net["port_vlans"], ""),
        nmcli.list_cmd().argv: (0, rec.net["connections"], ""), nmcli.devices_cmd().argv: (0, rec.net["devices"], ""),
        nmcli.details_cmd(uuids).argv: (0, rec.net["profiles"], ""),
        qemu_img_info(IMAGE).argv: (0, rec.images[IMAGE], ""),
        hostfile.cat_cmd("/root/kvm/test1.xml").argv: (0, rec.files["/root/kvm/test1.xml"], ""),
        hostfile.cat_cmd("/root/kvm/web3.xml").argv: missing,
        hostfile.exists_cmd("/root/kvm").argv: (0, "", ""), hostfile.exists_cmd("/nope").argv: (1, "", ""),
    }
    live = LiveSource(Host(site, Answers(outputs), site.libvirt_uri))
    recorded = source_of(host)
    assert isinstance(recorded, LiveSource) and isinstance(host.runner.inner, RecordedRunner)  # type: ignore[attr-defined]
    assert live.lvm(site) == recorded.lvm(site)
    assert live.net() == recorded.net()
    assert live.image(IMAGE) == recorded.image(IMAGE)
    for path in ("/root/kvm/test1.xml", "/root/kvm/web3.xml"):
        assert live.file(path) == recorded.file(path)
    for path in ("/root/kvm", "/nope"):
        assert live.exists(path) == recorded.exists(path)


def test_apply_is_refused_whatever_runner_is_given(site: Site) -> None:
    with pytest.raises(PlanOnly, match="plan-only"):
        connect(site, apply=True)
    with pytest.raises(PlanOnly, match="plan-only"):
        connect(site, apply=True, runner=RecordedRunner("x", site.recorded))


def test_a_command_on_the_recorded_host_is_refused_and_nothing_runs(host: Host) -> None:
    """A change is only recorded as planned; a read the recording does not answer is refused,
    naming the command; the recording's reads run nowhere and are not kept as commands."""
    assert not host.apply and not host.runner.executes_mutations
    planned = host.run(change("lvremove", "rl_build/vmold"))
    assert not planned.executed
    assert "<name>test1</name>" in host.run(read("cat", "--", "/root/kvm/test1.xml")).stdout
    with pytest.raises(NotRecorded, match=r"no recorded answer for `kpartx -l /dev/rl_build/vmold`"):
        host.run(read("kpartx", "-l", "/dev/rl_build/vmold"))
    runner = RecordedRunner("demo", host.site.recorded)
    with pytest.raises(PlanOnly, match="nothing runs there"):
        runner.run(change("lvremove", "rl_build/vmold"))
    assert not runner.executes_mutations and not any(r.executed for r in host.runner.records)
    assert [r.command for r in host.runner.records] == ["lvremove rl_build/vmold"]


SITE = '[host]\nname = "x"\nrecorded = "{file}"\n[storage]\nvg = "rl_build"\nlv_prefix = "vm"\n' \
       '[network]\nuplink = "eth0"\n'
LVM = "[lvm]\nvgs = '{\"report\": [{\"vg\": []}]}'\nlvs = '{\"report\": [{\"lv\": []}]}'\n"


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (None, r"host.recorded: .*nothere.toml is not a file of recorded facts"),
        ("[lvm\n", "not valid TOML"),
        ("[disks]\n" + LVM, "disks: unknown section"),
        ("[files]\n", "lvm: is missing"),
        ("[lvm]\nvgs = ''\n", "lvm: needs exactly the reports vgs, lvs"),
        ("[lvm]\nvgs = 1\nlvs = ''\n", "lvm.vgs: must be the command's output as text"),
        (LVM + "[files]\n'etc/x' = ''\n", r"files.'etc/x': must be an absolute path"),
        (LVM + "[paths]\nexist = ['x']\n", "paths.exist: must be a list of absolute paths"),
        (LVM + "[net]\nlinks = '[]'\n", "net: needs exactly the reports"),
    ],
)
def test_a_broken_recorded_site_is_refused_naming_file_and_key(tmp_path: Path, facts: str | None,
                                                               message: str) -> None:
    name = "nothere.toml" if facts is None else "facts.toml"
    if facts is not None:
        (tmp_path / name).write_text(facts)
    (tmp_path / "s.toml").write_text(SITE.format(file=name))
    with pytest.raises(ConfigError, match=message):  # at the site's load, or when its host is opened
        connect(load_site(tmp_path / "s.toml"))


def test_a_recorded_site_without_network_facts_says_so(tmp_path: Path) -> None:
    (tmp_path / "facts.toml").write_text(LVM.replace('[]}]}', '[{"vg_name":"rl_build", "vg_size":"8", "vg_free":'
                                                     '"8", "vg_extent_size":"4", "lv_count":"0"}]}]}', 1))
    (tmp_path / "s.toml").write_text(SITE.format(file="facts.toml"))
    h = connect(load_site(tmp_path / "s.toml"))
    with pytest.raises(NotFound, match="records no network facts"):
        source_of(h).net()
    assert source_of(h).lvm(h.site).vg.name == "rl_build"


def test_site_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SITE_ENV, raising=False)
    assert resolve_site("") == shipped_sites()["demo"]
    assert resolve_site(None, default="guide") == shipped_sites()["guide"]
    assert resolve_site("demo", default="guide") == shipped_sites()["demo"]
    other = tmp_path / "x.toml"
    other.write_text("")
    monkeypatch.setenv(SITE_ENV, str(other))
    assert resolve_site("") == resolve_site(None, default="guide") == other.resolve()
    with pytest.raises(ConfigError, match="no shipped site called 'nope'"):
        resolve_site("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_site(str(tmp_path / "missing.toml"))
