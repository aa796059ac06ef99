{%- from "common/map.jinja" import mapdata as common with context %}
{%- set cert = common.cluster.cert %}
{#- the CA minion: the node with role master (salt/ca); node ids are the topology's names #}
{%- set ca_server = (salt["mailcluster.nodes_with"]("master") or [none])[0] %}
{#- a certificate from pillar that names its CA (secrets:tls:<node>:ca) needs no CA minion: a
    masterless node (kitchen.yml's suites) gets everything from its pillar #}
{%- set own_ca = cert.get("ca_pem") if cert.pem else none %}
{#- A bare cluster applies everywhere at once: a node can get here before the master has made
    the CA. The states that need it wait for it (retry: at most 30 x 10 s) instead of failing. #}
{%- set wait = {"attempts": 30, "interval": 10, "until": true} %}

include:
  - common.package

common-tls-dir-file-directory:
  file.directory:
    - name: {{ common.tls.dir }}
    - mode: "0755"
    - require:
      - sls: common.package
{%- if not ca_server and not own_ca %}

common-tls-ca-test-fail-without-changes:
  test.fail_without_changes:
    - name: "mailcluster:nodes: no node has role master (the cluster CA, salt/ca)"
{%- endif %}
{%- if cert.pem %}
{#- a real certificate and key from pillar (mailcluster:secrets:tls:<node>) #}

common-tls-key-file-managed:
  file.managed:
    - name: {{ common.tls.key }}
    - contents: {{ cert.key_pem | json }}
    - mode: "0640"
    - group: ssl-cert
    - show_changes: false
    - require:
      - file: common-tls-dir-file-directory

common-tls-cert-file-managed:
  file.managed:
    - name: {{ common.tls.cert }}
    - contents: {{ cert.pem | json }}
    - mode: "0644"
    - require:
      - file: common-tls-key-file-managed
{%- set cert_state = "file: common-tls-cert-file-managed" %}
{%- elif ca_server %}

{#- the key is made here and never leaves the node: the CA minion gets the public key only #}
common-tls-key-x509-private-key-managed:
  x509.private_key_managed:
    - name: {{ common.tls.key }}
    - algo: rsa
    - keysize: {{ common.tls.keysize }}
    - mode: "0640"
    - group: ssl-cert
    - require:
      - file: common-tls-dir-file-directory

{#- signed remotely by the CA minion under this node's own policy, which fixes the names
    (CN, SANs: the role facts' cluster.cert) and extensions; re-issued only when it is due
    (days_remaining) or the key, the CA or the policy changed #}
common-tls-cert-x509-certificate-managed:
  x509.certificate_managed:
    - name: {{ common.tls.cert }}
    - ca_server: {{ ca_server }}
    - signing_policy: mailcluster-{{ grains["id"] }}
    - private_key: {{ common.tls.key }}
    - days_remaining: {{ common.tls.days_remaining }}
    - mode: "0644"
    - retry: {{ wait | json }}
    - require:
      - x509: common-tls-key-x509-private-key-managed
{%- set cert_state = "x509: common-tls-cert-x509-certificate-managed" %}
{%- endif %}
{%- if own_ca %}

common-tls-ca-file-managed:
  file.managed:
    - name: {{ common.tls.ca }}
    - contents: {{ own_ca | json }}
    - mode: "0644"
    - require:
      - {{ cert_state }}
{%- elif ca_server %}

{#- the CA certificate as the CA minion publishes it in the mine (pillar/ca.sls); a slot, so it
    is read when the state runs (and again on each retry), not when the SLS renders. After the
    node's certificate: once that is signed the CA exists and the master has published it. #}
common-tls-ca-x509-pem-managed:
  x509.pem_managed:
    - name: {{ common.tls.ca }}
    - text: __slot__:salt:mine.get({{ ca_server }}, mailcluster_ca).{{ ca_server }}
    - mode: "0644"
    - retry: {{ wait | json }}
    - require:
      - {{ cert_state if cert_state is defined else "file: common-tls-dir-file-directory" }}
{%- endif %}
{%- if cert_state is defined and not cert.pem %}

{#- the node's certificate chains to the CA file the services trust; a mine value older than
    the CA (a CA made again while the mine still held the old one) fails here, by name #}
common-tls-ca-verify-cmd-run:
  cmd.run:
    - name: openssl verify -CAfile {{ common.tls.ca }} {{ common.tls.cert }}
    - unless: openssl verify -CAfile {{ common.tls.ca }} {{ common.tls.cert }}
    - require:
      - x509: common-tls-ca-x509-pem-managed
{%- endif %}
{%- if cert_state is defined %}

{#- a renewed certificate reaches the TLS services that run on this node (those not running
    yet start later with it) #}
common-tls-services-cmd-run:
  cmd.run:
    - name: >-
        for unit in postfix dovecot lighttpd; do
        if systemctl -q is-active "$unit"; then systemctl reload-or-restart "$unit" || exit 1; fi;
        done
    - onchanges:
      - {{ cert_state }}
{%- endif %}
