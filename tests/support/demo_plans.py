"""Every runbook's plan on the demo site: the parameters it runs with there, what it plans and
prints (tests/unit/test_runbook_runbooks.py; the clean-output check runs the same plans)."""

from __future__ import annotations

from tests.support.secrets import PASSWORDS

# runbook -> (parameters, planned mutating commands expected (prefixes), text expected in the output)
CASES: dict[str, tuple[dict[str, object], list[str], list[str]]] = {
    "lv-snapshot": ({}, ["lvcreate --snapshot --name vminflux-20"], ["--size 5g rl_build/vminflux"]),
    "lv-restore": ({}, ["lvconvert --mergesnapshot rl_build/vminflux-20261120T0900Z --interval 10"],
                   ["[DESTRUCTIVE: needs confirm=rl_build/vminflux-20261120T0900Z]",
                    "rl_build/vminflux rolls back to vminflux-20261120T0900Z, taken at 2026-11-20 09:00 UTC"]),
    "lv-resize": ({"size": "30g"}, ["lvresize --size 30g rl_build/vminflux"], ["grow rl_build/vminflux by 10.00 GiB"]),
    "snapshot-filling-up": ({}, ["lvresize --size 7g rl_build/vmtest1-20261124T0815Z"],
                            ["84.37%", "FILLING UP", "12.50%"]),
    "lv-remove": ({}, ["lvremove rl_build/vmold"], ["[DESTRUCTIVE: needs confirm=rl_build/vmold]"]),
    "host-recovery": ({"order": "influx"}, ["virsh start influx"],
                      ["libvirt's log shows it running when the host went down", "running (nothing to do)",
                       "wait up to 300 s until influx has booted"]),
    "lv-create": ({"guest": "web2", "size": "12g"},
                  ["lvcreate --name vmweb2 --size 12g --wipesignatures y --yes rl_build"], []),
    "inventory": ({}, [], ["FILLING UP", "592.00 GiB free of 892.00 GiB", "virbr1.2367  -", "influx"]),
    "guest-resize": ({}, ["lvresize --size 30g rl_build/vminflux"],
                     ["the partition phase (`sfdisk -N` + `kpartx -u` on rl_build/vminflux)"]),
    "guest-lifecycle": ({"action": "shutdown"}, ["virsh shutdown test1"],
                        ["virsh shutdown test1", "test1  running"]),
    "guest-remove": ({}, ["virsh undefine influx",
                          "mv --backup=numbered -- /root/kvm/influx.xml /root/kvm/influx.xml.undefined",
                          "lvremove rl_build/vminflux-20261120T0900Z", "lvremove rl_build/vminflux"],
                     ["confirm_disks='rl_build/vminflux-20261120T0900Z,rl_build/vminflux'"]),
    "host-network": ({"vlan": 2367}, [
        "nmcli connection add type bridge ifname virbr1.2367 con-name virbr1.2367 bridge.ageing-time 0",
        "nmcli connection up id virbr1.2367",
        "nmcli connection add type vlan ifname ens802f1.2367 con-name ens802f1.2367 dev ens802f1 id 2367 "
        "master virbr1.2367 slave-type bridge",
    ], ["VLAN 2367: bridge virbr1.2367, 10.5.67.0/24, gateway 10.5.67.254, DHCP unknown (the guide does not say)",
        "drift: bridge missing"]),
    "guest-create": ({"guest": "web2", "address": "10.5.68.237", "size": "12g", "vlans": "2368,223",
                      "root_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n "
                                   "admin@example", "password": PASSWORDS["runbooks"]}, [
        "lvcreate --name vmweb2 --size 12g --wipesignatures y --yes rl_build",
        "qemu-img convert -n -p -t none -W -f qcow2 -O raw /var/lib/kvmops/images/Rocky-9-GenericCloud.latest"
        ".x86_64.qcow2 /dev/rl_build/vmweb2",
        "install -D -m 0600 /dev/null /var/lib/libvirt/boot/web2-seed.iso",
        "openssl base64 -d -A -out /var/lib/libvirt/boot/web2-seed.iso <<< REDACTED",
        "install -D -m 0600 /dev/stdin /root/kvm/web2.xml",
        "virsh define /root/kvm/web2.xml",
        "virsh start web2",
        "virsh autostart web2",
        "virsh change-media web2 sda --eject --live",
        "virsh change-media web2 sda --eject --config",
        "install -D -m 0600 /dev/stdin /root/kvm/web2.xml",
        "rm -f -- /var/lib/libvirt/boot/web2-seed.iso",
    ], ["NIC 1: VLAN 2368, bridge virbr1.2368, MAC 52:54:00:",
        "(10.5.68.0/24): 10.5.68.237/24 on VLAN 2368, default route via 10.5.68.254, DNS 132.230.200.200",
        "NIC 2: VLAN 223, bridge virbr1.223, MAC 52:54:00:", "before the guest's first boot, add a reservation for "
        "10.5.68.237 (guest web2) with MAC 52:54:00:", "fill rl_build/vmweb2 with",
        "wait up to 120 s for a login prompt on its serial console",
        "only after a verified boot: retire the NoCloud seed", "virsh change-media web2 sda --eject --live",
        "rm -f -- /var/lib/libvirt/boot/web2-seed.iso"]),
    "lv-rename": ({}, ["lvrename rl_build vminflux vminfluxdb", "install -D -m 0600 /dev/stdin /root/kvm/influx.xml",
                       "virsh define /root/kvm/influx.xml"],
                  ["[DESTRUCTIVE: needs confirm=influx]", "definitions to update: influx",
                   "define guest influx again with its disk /dev/rl_build/vminfluxdb (UUID"]),
    "guest-inspect": ({}, [], ["kpartx -l -p p /dev/mapper/rl_build-vminflux",
                               "kpartx -a -v -r -p p /dev/mapper/rl_build-vminflux",
                               "mount -t FSTYPE -o ro /dev/mapper/rl_build-vminfluxpN /run/kvmops/mnt-XXXXXX",
                               "kpartx -d -v -p p /dev/mapper/rl_build-vminflux",
                               "SKIPPED: site demo replays recorded outputs"]),
    "image-tweak": ({"vlan": 2367, "address": "10.5.67.237", "password": PASSWORDS["runbooks"]}, [],
                    ["password of centos (SHA-512 hash via chpasswd -e)", "sudo without password for centos",
                     "address1=10.5.67.237/24,10.5.67.254", "SKIPPED: site demo replays recorded outputs"]),
    "guest-move": ({"remove_source_disks": True}, [
        "virsh shutdown test1", "lvcreate --snapshot --name vmtest1-20", "lvcreate --name vmtest1 --size 10g --addtag "
        "kvmops-move-from:demo:rl_build/vmtest1 --addtag kvmops-move-copying --wipesignatures y --yes vg_guests",
        "demo$ dd if=/dev/rl_build/vmtest1-20", "lvchange --deltag kvmops-move-copying --addtag kvmops-move-copied",
        "lvremove rl_build/vmtest1-20", "install -D -m 0600 /dev/stdin /root/kvm/test1.xml",
        "virsh define /root/kvm/test1.xml",
        "lvchange --deltag kvmops-move-copied --addtag kvmops-move-started vg_guests/vmtest1", "virsh start test1",
        "lvchange --deltag kvmops-move-started --addtag kvmops-move-booted vg_guests/vmtest1", "virsh undefine test1",
        "mv --backup=numbered -- /root/kvm/test1.xml", "lvremove rl_build/vmtest1-20261124T0815Z",
        "lvremove rl_build/vmtest1",
    ], ["bridge virbr1.2368 -> br2368 (VLAN 2368)", "[DESTRUCTIVE: needs confirm=test1]",
        "confirm_disks='rl_build/vmtest1-20261124T0815Z,rl_build/vmtest1'", "(ONLY if a stage above failed)",
        "virsh start test1", "demo2$ openssl dgst -sha256 -r -- /dev/vg_guests/vmtest1"]),
    "lv-backup": ({}, ["lvcreate --snapshot --name vminflux-20", "mkdir -p -m 0700 -- /srv/kvmops-backups/influx/20",
                       "demo$ gzip --fast --stdout -- /dev/rl_build/vminflux-20",
                       "demo$ ssh-keygen -q -Y sign -n kvmops-backup -f /etc/ssh/ssh_host_ed25519_key",
                       "install -D -m 0600 /dev/stdin "
                       "/srv/kvmops-backups/influx/20", "lvremove rl_build/vminflux-20",
                       "rm -r --one-file-system -- /srv/kvmops-backups/influx/20261126T020000Z"],
                  ["compression: gzip (zstd is not on both the source and the place)", "INCOMPLETE",
                   "[DESTRUCTIVE: needs confirm=influx]", "gzip --test --quiet -- /srv/kvmops-backups/influx/20"]),
    "lv-backup-restore": ({"new_name": "web1-copy", "define": True, "start": True}, [
        "lvcreate --name vmweb1-copy --size 12g --addtag kvmops-restore-of:web1/20261129T030000Z/vmweb1 --addtag "
        "kvmops-restore-incomplete --wipesignatures y --yes rl_build",
        "demo2$ zstd --decompress --quiet --stdout -- /srv/kvmops-backups/web1/20261129T030000Z/vmweb1.raw.zst | "
        "demo$ dd of=/dev/rl_build/vmweb1-copy bs=4M iflag=fullblock oflag=direct conv=fsync status=none",
        "lvchange --deltag kvmops-restore-incomplete --addtag kvmops-restored rl_build/vmweb1-copy",
        "install -D -m 0600 /dev/stdin /root/kvm/web1-copy.xml", "virsh define /root/kvm/web1-copy.xml",
        "virsh start web1-copy",
    ], ["backup 20261129T030000Z of web1 from demo2 (zstd", "guest web1-copy defined with a new UUID and new MAC "
        "addresses", "bridge br2368 -> virbr1.2368"]),
    "lv-backup-verify": ({}, [
        "lvcreate --name vminflux-verify --size 20g --addtag kvmops-restore-of:influx/20261128T020000Z/vminflux",
        "demo2$ gzip --decompress --stdout -- /srv/kvmops-backups/influx/20261128T020000Z/vminflux.raw.gz | "
        "demo$ dd of=/dev/rl_build/vminflux-verify",
        "lvchange --deltag kvmops-restore-incomplete --addtag kvmops-restored rl_build/vminflux-verify",
        "install -D -m 0600 /dev/stdin /root/kvm/influx-verify.xml", "virsh define /root/kvm/influx-verify.xml",
        "virsh start influx-verify", "virsh destroy influx-verify", "virsh undefine influx-verify",
        "mv --backup=numbered -- /root/kvm/influx-verify.xml", "lvremove rl_build/vminflux-verify",
    ], ["no network: every interface of its definition is left out", "(also after a failure: cleanup)",
        "plan only: nothing was changed, so nothing is verified"]),
    "guest-unreachable": ({"destroy": True}, ["virsh destroy test1"],
                          ["test1  running", "cannot open consoles", "no serial log file configured",
                           "[DESTRUCTIVE: needs confirm=test1]", "kpartx -a -v -r -p p /dev/mapper/rl_build-vmtest1",
                           "planned after the destroy"]),
}
