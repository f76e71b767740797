"""The manual's benchmarks page shows bench/guest_boot.py's results (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

from kvmops_manual import benchmarks


def _results(seconds: float, idle: float) -> dict[str, object]:
    return {"bench": "guest_boot", "measured": "2026-11-30T10:00:00+00:00", "machine": {"hostname": "b1"},
            "cloud_image": {"build_s": 78.0, "allocated_bytes": 707 << 20, "virtual_bytes": 2 << 30},
            "one_level": [{"setup": "offline", "qemu_start_to_login_prompt_s": 84.2, "qemu_start_to_ssh_s": 110.0,
                           "loadavg_1m_after": 3.1}],
            "nested_small_guest": {"booted": True, "virsh_start_to_login_prompt_s": seconds, "domain_type": "kvm",
                                   "lab_qemu_cpu_pct_guest_idle": idle, "lab_qemu_cpu_pct_idle_lab": 6.0}}


def test_guest_boot_rows_and_the_goal(tmp_path: Path) -> None:
    (tmp_path / "guest_boot-results.json").write_text(json.dumps(_results(55.0, 8.6)))
    page = benchmarks.page(tmp_path)
    assert "| Realistic guest image build (`kvmops_lab.cloud_image`) | measured, no goal | 78 s; 707 MiB " \
           "allocated of 2.0 GiB |" in page
    assert "one level of TCG (offline): QEMU start to login prompt / SSH" in page and "84 s / 110.0 s" in page
    assert "55 s (kvm); 8.6 % (lab alone 6.0 %) | yes |" in page
    (tmp_path / "guest_boot-results.json").write_text(json.dumps(_results(185.0, 8.6)))
    assert "185 s (kvm); 8.6 % (lab alone 6.0 %) | **no** |" in benchmarks.page(tmp_path)
