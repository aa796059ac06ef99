"""Role common: base packages, the cluster's TLS files, the firewall (role firewall)."""

from checks import assert_file, assert_packages, assert_service, node_ip


def check_packages(host):
    assert_packages(host, "rsyslog", "openssl", "ssl-cert", "dnsutils", "nftables")


def check_tls_files(host):
    # the key readable by the services' group only (postfix, dovecot, lighttpd join ssl-cert)
    assert_file(host, "/etc/ssl/mailcluster/node.key", 0o640, group="ssl-cert")
    assert_file(host, "/etc/ssl/mailcluster/node.crt", 0o644)
    assert_file(host, "/etc/ssl/mailcluster/ca.crt", 0o644)
    proc = host.run(
        "openssl verify -CAfile /etc/ssl/mailcluster/ca.crt /etc/ssl/mailcluster/node.crt"
    )
    assert proc.rc == 0, f"the node's certificate does not chain to the CA file: {proc.stderr}"


def check_hosts_file(host):
    ip = node_ip(host)
    line = [x for x in host.file("/etc/hosts").content_string.splitlines() if x.startswith(ip)]
    assert line, f"/etc/hosts has no line for the node's address {ip}"


def check_firewall(host):
    assert_service(host, "nftables")
    assert_file(host, "/etc/nftables.d/mailcluster.nft", 0o644)
    proc = host.run("nft list table inet mailcluster")
    assert proc.rc == 0, f"table inet mailcluster is not loaded: {proc.stderr}"
