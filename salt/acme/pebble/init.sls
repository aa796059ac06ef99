{%- from "acme/map.jinja" import acme with context %}
{%- set p = acme.pebble %}
# acme.pebble: THE LAB'S TEST ACME CA, never for a real site. pebble (a Debian package made
# for testing ACME clients) on the master's node when pillar acme:pebble:enabled is true: it
# validates DNS-01 against the cluster's DNS primary, serves its ACME API over HTTPS with
# this node's cluster certificate (the nodes' certbot trusts the cluster CA), and makes a new
# root at every start (https://<node>:<management_port>/roots/0; docs/acme.md).
{%- if p.enabled %}

include:
  - common.tls

acme-pebble-package-pkg-installed:
  pkg.installed:
    - name: {{ p.package }}

acme-pebble-config-file-managed:
  file.managed:
    - name: {{ p.config }}
    - source: salt://acme/files/pebble.json.jinja
    - template: jinja
    - mode: "0644"
    - makedirs: true
    - context:
        mapdata: {{ acme | json }}
        tls: {{ acme.node_tls | json }}
    - require:
      - pkg: acme-pebble-package-pkg-installed

acme-pebble-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ p.service }}.service
    - source: salt://acme/files/pebble.service.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ acme | json }}
    - require:
      - pkg: acme-pebble-package-pkg-installed

acme-pebble-service-running:
  service.running:
    - name: {{ p.service }}
    - enable: true
    # a new node certificate (its HTTPS) restarts it too: pebble then has a new root, and
    # the certificates it issued before chain to none it serves (docs/acme.md)
    - watch:
      - sls: common.tls
      - file: acme-pebble-config-file-managed
      - file: acme-pebble-unit-file-managed
{%- endif %}
