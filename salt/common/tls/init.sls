{%- from "common/map.jinja" import mapdata as common with context %}
{%- set cert = common.cluster.cert %}

include:
  - common.package

common-tls-dir-file-directory:
  file.directory:
    - name: {{ common.tls.dir }}
    - mode: "0755"
    - require:
      - sls: common.package

common-tls-ca-file-managed:
  file.managed:
    - name: {{ common.tls.ca }}
    - contents: {{ common.cluster.ca.cert | json }}
    - mode: "0644"
    - require:
      - file: common-tls-dir-file-directory
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
{%- else %}

common-tls-key-x509-private-key-managed:
  x509.private_key_managed:
    - name: {{ common.tls.key }}
    - algo: rsa
    - keysize: {{ common.tls.keysize }}
    - mode: "0640"
    - group: ssl-cert
    - require:
      - file: common-tls-dir-file-directory

common-tls-cert-x509-certificate-managed:
  x509.certificate_managed:
    - name: {{ common.tls.cert }}
    - signing_private_key: {{ common.cluster.ca.key | json }}
    - signing_cert: {{ common.cluster.ca.cert | json }}
    - private_key: {{ common.tls.key }}
    - CN: {{ cert.cn }}
    - subjectAltName: {{ cert.san | json }}
    - basicConstraints: critical, CA:FALSE
    - keyUsage: critical, digitalSignature, keyEncipherment
    - extendedKeyUsage: serverAuth, clientAuth
    - days_valid: {{ common.tls.days_valid }}
    - days_remaining: {{ common.tls.days_remaining }}
    - mode: "0644"
    - require:
      - x509: common-tls-key-x509-private-key-managed
      - file: common-tls-ca-file-managed
{%- endif %}
