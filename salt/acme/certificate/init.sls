{%- from "acme/map.jinja" import acme with context %}
{#- postfix's SNI table: on the mail nodes only (the web node has no postfix) #}
{%- set sni = "mail" in salt["mailcluster.node_roles"]() %}

include:
  - common.tls
  - acme.config

{#- Until the first certificate arrives (or while the ACME server never answered), the
    services serve a copy of the node's cluster certificate for the ACME names: the files
    they read always exist. Copied once, never over a real one. #}
acme-certificate-key-file-copy:
  file.copy:
    - name: {{ acme.key }}
    - source: {{ acme.node_tls.key }}
    - force: false
    - preserve: true
    - require:
      - sls: common.tls

acme-certificate-cert-file-copy:
  file.copy:
    - name: {{ acme.cert }}
    - source: {{ acme.node_tls.cert }}
    - force: false
    - preserve: true
    - require:
      - file: acme-certificate-key-file-copy
{%- if sni %}

# every ACME name -> the key and full chain (postmap -F puts their contents in the table)
acme-certificate-sni-map-file-managed:
  file.managed:
    - name: {{ acme.sni_map }}
    - source: salt://acme/files/postfix-sni.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ acme | json }}
    - require:
      - file: acme-certificate-cert-file-copy

acme-certificate-sni-map-cmd-run:
  cmd.run:
    - name: postmap -F hash:{{ acme.sni_map }}
    - onchanges:
      - file: acme-certificate-sni-map-file-managed
      - file: acme-certificate-cert-file-copy
{%- endif %}

# a new order only when the lineage is missing, its names or server changed, or it is due;
# a server that does not answer fails here, naming it, and the files above stay as they are
acme-certificate-mailcluster-acme-certificate:
  mailcluster_acme.certificate:
    - name: {{ acme.cert_name }}
    - names: {{ acme.cluster.names | json }}
    - server: {{ acme.server | json }}
    - email: {{ acme.email | json }}
    - credentials: {{ acme.credentials }}
    - hook: {{ acme.hook }}
    - deployed: {{ acme.cert }}
    - server_ca: {{ acme.server_ca | json }}
    - key_type: {{ acme.key_type }}
    - propagation_seconds: {{ acme.propagation_seconds }}
    - renew_days: {{ acme.renew_days }}
    - timeout: {{ acme.timeout }}
    - config_dir: {{ acme.config_dir }}
    - require:
      - sls: acme.config
      - file: acme-certificate-cert-file-copy
{%- if sni %}
      - cmd: acme-certificate-sni-map-cmd-run
{%- endif %}
