{%- from "common/map.jinja" import mapdata as dns with context %}
# Undo dns: stop BIND, empty its zone list and remove the TSIG key. Zone files are kept.

dns-clean-named-service-dead:
  service.dead:
    - name: {{ dns.service }}
    - enable: false

dns-clean-local-file-managed:
  file.managed:
    - name: /etc/bind/named.conf.local
    - contents: "// no zones (dns role removed)"
    - require:
      - service: dns-clean-named-service-dead

dns-clean-tsig-key-file-absent:
  file.absent:
    - name: {{ dns.key_file }}
    - require:
      - service: dns-clean-named-service-dead
