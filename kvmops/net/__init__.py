"""Guest networks (guide 2.2 and 3.3.3): VLAN bridges through NetworkManager, static addresses.

Layers:

- parsers and fact commands: :mod:`kvmops.net.nmcli` (``nmcli -t``), :mod:`kvmops.net.iplink`
  (``ip -j -d address show``, ``bridge -j vlan show``), gathered by
  :func:`kvmops.facts.net.read_net`;
- pure checks and builders: :mod:`kvmops.net.validate`, :mod:`kvmops.net.drift`
  (report against the site's networks), :mod:`kvmops.net.commands` (nmcli argv),
  :mod:`kvmops.net.address` (static address, guest nmcli argv, keyfile, ifcfg);
- operations over the host's facts (:class:`kvmops.hostfacts.HostFacts`, read with
  ``Wanted(net=True)``) returning plans: :mod:`kvmops.net.ops` (bridge + VLAN port, removal,
  guarded by :mod:`kvmops.net.attached`), :mod:`kvmops.net.registry`
  (``<xml_dir>/addresses.toml``, a file fact).

The runbook and CLI glue lives in :mod:`kvmops.procedures.host_network` and
:mod:`kvmops.procedures.net_address`.
"""
