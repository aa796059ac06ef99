{%- from "common/map.jinja" import mapdata as ca with context %}
{#- a site's own CA (pillar mailcluster:secrets:ca, cert and key) replaces the one made here #}
{%- set own = salt["pillar.get"]("mailcluster:secrets:ca", {}) or {} %}
{%- set cluster = salt["pillar.get"]("mailcluster:cluster:name", "mailcluster") %}

ca-authority-dir-file-directory:
  file.directory:
    - name: {{ ca.dir }}
    - user: root
    - group: root
    - mode: "0700"
    - makedirs: true
{%- if own.get("key") or own.get("cert") %}
{%- if not (own.get("key") and own.get("cert")) %}

ca-authority-own-test-fail-without-changes:
  test.fail_without_changes:
    - name: "mailcluster:secrets:ca: give both cert and key (PEM), or neither (the master makes the CA)"
{%- endif %}

{#- contents_pillar: the key is read at run time, not rendered into the state (job cache) #}
ca-authority-key-file-managed:
  file.managed:
    - name: {{ ca.key }}
    - contents_pillar: mailcluster:secrets:ca:key
    - user: root
    - group: root
    - mode: "0600"
    - show_changes: false
    - require:
      - file: ca-authority-dir-file-directory

ca-authority-cert-file-managed:
  file.managed:
    - name: {{ ca.cert }}
    - contents_pillar: mailcluster:secrets:ca:cert
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: ca-authority-key-file-managed
{%- set cert_state = "file: ca-authority-cert-file-managed" %}
{%- else %}

ca-authority-key-x509-private-key-managed:
  x509.private_key_managed:
    - name: {{ ca.key }}
    - algo: rsa
    - keysize: {{ ca.keysize }}
    - user: root
    - group: root
    - mode: "0600"
    - require:
      - file: ca-authority-dir-file-directory

ca-authority-cert-x509-certificate-managed:
  x509.certificate_managed:
    - name: {{ ca.cert }}
    - signing_private_key: {{ ca.key }}
    - CN: {{ ("mailcluster " ~ cluster ~ " CA") | json }}
    - O: mailcluster
    - basicConstraints: critical, CA:TRUE, pathlen:0
    - keyUsage: critical, cRLSign, keyCertSign
    - subjectKeyIdentifier: hash
    - authorityKeyIdentifier: keyid:always
    - days_valid: {{ ca.days_valid }}
    - days_remaining: {{ ca.days_remaining }}
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - x509: ca-authority-key-x509-private-key-managed
{%- set cert_state = "x509: ca-authority-cert-x509-certificate-managed" %}
{%- endif %}

{#- the nodes read the CA certificate from the mine (common.tls): publish a new one at once
    (the minion also sends it at start and every mine_interval) #}
ca-authority-mine-module-run:
  module.run:
    - mine.update: []
    - onchanges:
      - {{ cert_state }}
