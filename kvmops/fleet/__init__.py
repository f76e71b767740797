"""Beyond one host: the hosts of a fleet (site files or an Ansible inventory), their facts read
in parallel, and what they have room for. No cluster layer: each host is reached over SSH with
strict host keys, exactly as one site is."""
