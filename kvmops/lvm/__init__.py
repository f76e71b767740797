"""LVM: guest disks are logical volumes in the OS volume group (guide 2.1, 4.2)."""
