"""Helpers shared by the test tiers: loop devices, scratch LVM, fact replay."""
