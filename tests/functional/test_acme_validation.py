"""The acme role's pillar and what it renders, through Salt's loader (no daemons).

- bad acme pillar (a server that is not an https URL, a bad e-mail, a label that is not a DNS
  label, an unknown key, a TSIG secret that is not base64) is refused naming the key by
  ``mailcluster.validate``; a server without its e-mail or TSIG secret stops the mail role's
  SLS naming the missing key;
- off (no ``acme:server``, pebble disabled): no service config names an ACME file, no acme
  state renders, pebble's port stays closed;
- on: mx1's certificate holds every name of every domain (round robin, both MX hosts,
  autoconfig, autodiscover, mta-sts, webmail), ns1's the web names only; postfix, dovecot and
  lighttpd serve it by SNI next to the cluster certificate; the DNS primary lets the ACME key
  change exactly the _acme-challenge TXT names; certbot's credentials file hides its diff.
"""

import pytest
import yaml
from test_roles_support import merged, pillar_copy, run_node, validate_cases

OFF = yaml.dump({"acme": {"server": None, "pebble": {"enabled": False}}})
ON = {
    "acme": {
        "server": "https://salt.cluster.test:14000/dir",
        "email": "hostmaster@example.test",
        "pebble": {"enabled": True},
    }
}

BAD = {
    "server-http": (
        "acme: {server: 'http://acme.example/dir'}",
        "acme:server: must be an https URL such as https://acme-v02",
    ),
    "server-not-url": ("acme: {server: letsencrypt}", "acme:server: must be an https URL"),
    "email-bad": ("acme: {email: 'hostmaster at example.test'}", "acme:email: must be an e-mail"),
    "email-no-domain": ("acme: {lookup: {email: root@}}", "acme:lookup:email: must be an e-mail"),
    "label-bad": ("acme: {labels: [Web_Mail]}", "acme:labels:0: must be one DNS label"),
    "key-type": ("acme: {key_type: dsa}", 'acme:key_type: must be one of "ecdsa", "rsa"'),
    "typo": ("acme: {sever: x}", "acme:sever: unknown key (allowed: lookup, server"),
    "secret-not-base64": (
        "mailcluster: {secrets: {acme: {secret: not-base64-at-all!!}}}",
        "mailcluster:secrets:acme:secret: must be base64",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_acme_pillar_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors
    assert not any("not-base64-at-all" in e for e in errors), errors  # never the value


def test_lab_pillar_with_acme_on_passes(tmp_path, lab_pillar_items):
    assert validate_cases(tmp_path, lab_pillar_items, {"on": yaml.dump(ON)}) == {"on": []}


def _without_acme_secret(root):
    secrets = root / "secrets.sls"
    lines = secrets.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    acme:"))
    secrets.write_text("".join(lines[:at] + lines[at + 2 :]))


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"acme": {"email": None}}, "acme:email: required when acme:server is set"),
        (None, "mailcluster:secrets:acme:secret: required when acme:server is set"),
    ],
    ids=["no-email", "no-secret"],
)
def test_server_without_its_email_or_secret_stops_the_role(tmp_path, extra, message):
    root = pillar_copy(tmp_path, yaml.dump(merged(ON, yaml.dump(extra or {}))))
    if extra is None:
        _without_acme_secret(root)
    (single,) = run_node(tmp_path, "mx1", [["state.show_sls", "mail"]], root)
    assert isinstance(single, list) and message in "\n".join(single), single


def _render(tmp, node, pillar):
    high, templates = run_node(tmp, node, [["state.show_highstate"], ["templates"]], pillar)
    assert isinstance(high, dict), high
    return high, {k: v["text"] for k, v in templates.items()}


@pytest.fixture(scope="module")
def rendered_on(tmp_path_factory):
    out = {}
    for node in ("salt", "mx1", "ns1", "ns2"):
        tmp = tmp_path_factory.mktemp(f"on-{node}")
        out[node] = _render(tmp, node, pillar_copy(tmp, yaml.dump(ON)))
    return out


def test_off_renders_no_acme(tmp_path):
    for node in ("mx1", "ns1"):
        high, templates = _render(tmp_path / node, node, pillar_copy(tmp_path / node, OFF))
        assert not [k for k in high if k.startswith("acme-")], node
        assert not any("acme" in text for text in templates.values()), node


def _args(high, state_id):
    body = high[state_id]
    fun = next(k for k in body if not k.startswith("__"))
    return {k: v for item in body[fun] if isinstance(item, dict) for k, v in item.items()}


def test_mail_node_certificate_holds_every_name_of_every_domain(rendered_on):
    high, templates = rendered_on["mx1"]
    names = _args(high, "acme-certificate-mailcluster-acme-certificate")["dns_names"]
    labels = ["autoconfig", "autodiscover", "mail", "mta-sts", "mx1", "mx2", "webmail"]
    # layout cluster: the MX hosts and the SRV target live in the cluster zone
    hosts = ["mail.cluster.test", "mx1.mail.cluster.test", "mx2.mail.cluster.test"]
    domains = ("example.test", "sales.test")
    assert names == sorted(hosts + [f"{n}.{d}" for d in domains for n in labels])
    main_cf = templates["/etc/postfix/main.cf"]
    assert "tls_server_sni_maps = hash:/etc/postfix/mailcluster-sni" in main_cf
    assert "smtpd_tls_cert_file = /etc/ssl/mailcluster/node.crt" in main_cf  # no SNI: cluster
    sni = templates["/etc/postfix/mailcluster-sni"]
    assert "mail.sales.test /etc/ssl/mailcluster/acme.key /etc/ssl/mailcluster/acme.crt" in sni
    dovecot = templates["/etc/dovecot/dovecot.conf"]
    for name in names:  # one block per name: dovecot 2.3 takes one name per local_name
        assert f"local_name {name} {{\n  ssl_cert = </etc/ssl/mailcluster/acme.crt" in dovecot
    ini = _args(high, "acme-config-credentials-file-managed")
    assert (ini["mode"], ini["show_changes"]) == ("0600", False)
    assert (
        "dns_rfc2136_server = 10.88.0.21" in templates["/etc/letsencrypt/mailcluster-rfc2136.ini"]
    )


def test_web_node_certificate_holds_the_web_names(rendered_on):
    high, templates = rendered_on["ns1"]
    names = _args(high, "acme-certificate-mailcluster-acme-certificate")["dns_names"]
    labels = ["autoconfig", "autodiscover", "mta-sts", "webmail"]
    assert names == sorted(f"{n}.{d}" for d in ("example.test", "sales.test") for n in labels)
    light = templates["/etc/lighttpd/conf-available/60-mailcluster.conf"]
    assert 'ssl.pemfile = "/etc/ssl/mailcluster/acme.crt"' in light
    assert "webmail\\.sales\\.test" in light


def test_dns_primary_lets_the_acme_key_change_only_the_challenges(rendered_on):
    high, templates = rendered_on["ns1"]
    local = templates["/etc/bind/named.conf.local"]
    assert 'include "/etc/bind/mailcluster-acme.key";' in local
    assert "grant mailcluster-acme name _acme-challenge.mx2.example.test. TXT;" in local
    assert "grant mailcluster-acme name _acme-challenge.webmail.sales.test. TXT;" in local
    assert "grant mailcluster-acme name _acme-challenge.mx1.mail.cluster.test. TXT;" in local
    assert "grant mailcluster-acme zonesub" not in local
    key = _args(high, "dns-config-acme-key-file-managed")
    assert (key["mode"], key["show_changes"]) == ("0640", False)
    high2, _ = rendered_on["ns2"]
    assert "dns-config-acme-key-file-managed" in high2  # an acting primary needs it too
    assert "acme-certificate-mailcluster-acme-certificate" not in high2  # no names on ns2


def test_pebble_only_on_the_master_when_enabled(rendered_on):
    high, templates = rendered_on["salt"]
    assert "acme-pebble-service-running" in high
    unit = templates["/etc/systemd/system/mailcluster-pebble.service"]
    assert "-dnsserver 10.88.0.21:53" in unit and "PEBBLE_VA_NOSLEEP=1" in unit
    assert "acme-pebble-service-running" not in rendered_on["mx1"][0]
    # the firewall opens pebble's port to the mail and web nodes only while it is enabled
    nft = templates["/etc/nftables.d/mailcluster.nft"]
    assert '@mail_web_v4 tcp dport { 14000 } accept comment "mail_web: acme-test-ca"' in nft


def test_pebble_port_closed_when_disabled(tmp_path):
    _high, templates = _render(tmp_path, "salt", pillar_copy(tmp_path, OFF))
    assert "14000" not in templates["/etc/nftables.d/mailcluster.nft"]


def test_top_gives_acme_to_the_tls_nodes_only_when_on(tmp_path):
    tops = {}
    for node in ("salt", "mx1", "ns1", "ns2"):
        root = pillar_copy(tmp_path / node, yaml.dump(ON))
        (tops[node],) = run_node(tmp_path / node, node, [["state.show_top"]], root)
    assert "acme" in tops["mx1"]["base"] and "acme" in tops["ns1"]["base"]
    assert "acme.pebble" in tops["salt"]["base"] and "acme" not in tops["salt"]["base"]
    assert not [s for s in tops["ns2"]["base"] if s.startswith("acme")]


def test_clean_renders(tmp_path):
    (high,) = run_node(tmp_path, "mx1", [["state.show_sls", "acme.clean"]])
    assert isinstance(high, dict) and high, high
    assert all(k.startswith("acme-clean-") for k in high), list(high)
