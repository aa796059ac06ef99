"""Role dns_primary: BIND serving every zone of the cluster as their primary."""

from checks import assert_file, assert_listening, assert_packages, assert_service, node_ip


def check_bind(host):
    assert_packages(host, "bind9", "bind9-utils")
    assert_service(host, "named")
    assert_listening(host, "tcp:53", "udp:53")


def check_tsig_key(host):
    # the key that signs dynamic updates and transfers: BIND's group only
    assert_file(host, "/etc/bind/mailcluster.key", 0o640, group="bind")


def check_zones_served(host):
    ip = node_ip(host)
    for zone in ("example.test", "sales.test"):
        proc = host.run(f"dig +short +norecurse @{ip} SOA {zone}")
        assert proc.rc == 0 and proc.stdout.strip(), f"{zone}: no SOA from {ip}: {proc.stdout}"
