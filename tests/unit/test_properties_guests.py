"""Properties of the guest spec and the domain XML: for random names, memory, vCPUs, VLANs and
bridges, bad input is a kvmops error before any XML exists, and the XML that is rendered
holds exactly the validated values, a disk that is the guest's own LV and the site's bridges."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmops import names
from kvmops.errors import KvmopsError, SafetyError
from kvmops.guests.spec import GuestSpec, guest_spec, memory_kib
from kvmops.guests.validate import check_disks
from kvmops.guests.xml import render_domain_xml
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.site import load_site
from tests.support.properties import cases, least

SITE = load_site()
BRIDGES = {n.bridge for n in SITE.networks}
VLANS = sorted(n.vlan for n in SITE.networks)
HOST_LVS = ("root", "home", "opt", "swap")
GiB = 1 << 30

def mostly(valid: st.SearchStrategy[object], invalid: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Valid about seven times in eight, so that whole specs (five values, lists of them) are
    valid often enough."""
    return st.integers(0, 7).flatmap(lambda i: invalid if i == 0 else valid)  # one_of would not weigh


guest_names = mostly(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,46}", fullmatch=True).filter(lambda n: ".." not in n),
    st.one_of(st.text(max_size=60), st.sampled_from(["-x", "a/b", "a b", "..", "x..y", "<x>", "a&b", "ä", "web1\n",
                                                     "a" * 49])),
)
memories = mostly(st.one_of(st.integers(1, 2**20), st.sampled_from(["2g", "512m", "2GiB", "1k", "1.5g"])),
                  st.one_of(st.integers(-5, 0), st.sampled_from(["0", "-1g", "1x", "", "1025b", True]),
                            st.text(max_size=8)))
vcpus = mostly(st.integers(1, 512), st.one_of(st.integers(-3, 0), st.sampled_from([True, False, 1.5, "2"])))
vlan_lists = st.lists(mostly(st.sampled_from(VLANS), st.one_of(st.integers(-2, 5000),
                                                              st.sampled_from(["2368", "x", "", "1e3", True]))),
                      max_size=3)
bridge_lists = st.lists(mostly(st.sampled_from(sorted(BRIDGES)),
                               st.one_of(st.text(max_size=20),
                                         st.sampled_from(["virbr1.9999", "br0", "virbr1.2368 ", "a" * 16]))),
                        max_size=2)


def build(**kw: object) -> GuestSpec | None:
    try:
        return guest_spec(SITE, **kw)  # type: ignore[arg-type]
    except KvmopsError:
        return None


def test_a_spec_is_valid_or_refused_with_a_kvmops_error() -> None:
    """Counted within the test: a property that only ever sees refused input proves nothing."""
    valid = []
    n = cases(120, ci=2000)

    @settings(max_examples=n, deadline=None)
    @given(name=guest_names, memory=memories, cpus=vcpus, vlans=vlan_lists, bridges=bridge_lists)
    def prop(name: str, memory: object, cpus: object, vlans: list[object], bridges: list[str]) -> None:
        spec = build(name=name, memory=memory, vcpus=cpus, vlans=vlans, bridges=bridges)
        if spec is None:
            return
        valid.append(name)  # counted here: this test alone must see valid specs
        check_rendered(spec, name, memory)

    prop()
    assert len(valid) >= least(0.02, n), f"only {len(valid)} of {n} specs were valid"  # ~10% are


@settings(max_examples=cases(60, ci=2000), deadline=None)
@given(name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,46}", fullmatch=True).filter(lambda n: ".." not in n),
       memory=st.one_of(st.integers(1, 2**20), st.sampled_from(["2g", "512m", "2GiB", "1k", "1.5g"])),
       cpus=st.integers(1, 512), vlans=st.lists(st.sampled_from(VLANS), min_size=1, max_size=4, unique=True))
def test_valid_input_gives_a_spec_and_xml_with_exactly_those_values(name: str, memory: object, cpus: int,
                                                                    vlans: list[int]) -> None:
    spec = guest_spec(SITE, name, memory=memory, vcpus=cpus, vlans=vlans)  # type: ignore[arg-type]
    check_rendered(spec, name, memory)


def check_rendered(spec: GuestSpec, name: str, memory: object) -> None:
    assert names.guest_name(spec.name) == name
    assert isinstance(spec.vcpus, int) and not isinstance(spec.vcpus, bool) and spec.vcpus >= 1
    assert spec.memory_kib >= 1 and spec.memory_kib * 1024 == _bytes(memory)
    assert spec.bridges and set(spec.bridges) <= BRIDGES and len(set(spec.bridges)) == len(spec.bridges)

    dom = ET.fromstring(render_domain_xml(SITE, spec))
    assert dom.findtext("name") == name
    assert dom.findtext("memory") == str(spec.memory_kib) and dom.findtext("vcpu") == str(spec.vcpus)
    assert [s.get("bridge") for s in dom.iterfind("devices/interface/source")] == list(spec.bridges)
    disks = [s.get("dev") or s.get("file") for s in dom.iterfind("devices/disk[@device='disk']/source")]
    assert disks == [f"/dev/{SITE.vg}/{SITE.lv_prefix}{name}"]  # the guest's own LV, never a host LV


def _bytes(memory: object) -> int:
    return memory_kib(memory) * 1024  # type: ignore[arg-type]


@settings(max_examples=cases(100, ci=2000), deadline=None)
@given(memory=memories)
def test_memory_is_whole_kib_or_refused(memory: object) -> None:
    try:
        kib = memory_kib(memory)  # type: ignore[arg-type]
    except KvmopsError:
        return
    assert isinstance(kib, int) and kib >= 1


@settings(max_examples=cases(60, ci=2000), deadline=None)  # also: test_safety_properties (define)
@given(data=st.lists(st.one_of(st.sampled_from(HOST_LVS), st.from_regex(r"vm[a-z0-9]{1,8}", fullmatch=True)),
                     max_size=3, unique=True))
def test_a_host_lv_is_never_accepted_as_a_guest_disk(data: list[str]) -> None:
    state = LvmState(VG(SITE.vg, 100 * GiB, 50 * GiB, 4 << 20, 3),
                     tuple(LV(n, SITE.vg, "-wi-a-----", GiB, "", None, None) for n in ("vmweb1", *HOST_LVS, *data)))
    try:
        spec = GuestSpec("web1", 1024, 1, tuple(sorted(BRIDGES))[:1], data_lvs=tuple(data))
    except KvmopsError:
        return
    try:
        check_disks(SITE, spec, state)
    except SafetyError:
        assert any(lv in HOST_LVS for lv in data)
        return
    assert not any(lv in HOST_LVS for lv in data)
