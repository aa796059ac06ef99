{%- from "acme/map.jinja" import acme with context %}
{#- postfix's SNI table: on the mail nodes only (the web node has no postfix) #}
{%- set sni = "mail" in salt["mailcluster.node_roles"]() %}

include:
  - common.tls

{#- Until the first certificate arrives (or while the ACME server never answered), the
    services serve a copy of the node's cluster certificate for the ACME names: the files
    they read always exist. Copied once, never over a real one. #}
acme-seed-key-file-copy:
  file.copy:
    - name: {{ acme.key }}
    - source: {{ acme.node_tls.key }}
    - force: false
    - preserve: true
    - require:
      - sls: common.tls

acme-seed-cert-file-copy:
  file.copy:
    - name: {{ acme.cert }}
    - source: {{ acme.node_tls.cert }}
    - force: false
    - preserve: true
    - require:
      - file: acme-seed-key-file-copy
{%- if sni %}

# every ACME name -> the key and full chain (postmap -F puts their contents in the table)
acme-seed-sni-map-file-managed:
  file.managed:
    - name: {{ acme.sni_map }}
    - source: salt://acme/files/postfix-sni.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ acme | json }}
    - require:
      - file: acme-seed-cert-file-copy

acme-seed-sni-map-cmd-run:
  cmd.run:
    - name: postmap -F hash:{{ acme.sni_map }}
    - onchanges:
      - file: acme-seed-sni-map-file-managed
      - file: acme-seed-cert-file-copy
{%- endif %}
