{%- from "common/map.jinja" import mapdata as dns with context %}
# dns.secondary: every cluster zone transferred from the primary (NOTIFY + IXFR).

include:
  - dns

dns-secondary-zone-dir-file-directory:
  file.directory:
    - name: {{ dns.secondary_dir }}
    - user: bind
    - group: bind
    - mode: "2775"
    - require:
      - sls: dns.package

dns-secondary-local-file-managed:
  file.managed:
    - name: /etc/bind/named.conf.local
    - source: salt://dns/files/named.conf.local.jinja
    - template: jinja
    - user: root
    - group: bind
    - mode: "0644"
    - check_cmd: named-checkconf
    - context:
        mapdata: {{ dns | json }}
    - require:
      - file: dns-secondary-zone-dir-file-directory
      - file: dns-config-tsig-key-file-managed

dns-secondary-reconfig-cmd-run:
  cmd.run:
    - name: rndc reconfig
    - onchanges:
      - file: dns-secondary-local-file-managed
    - require:
      - sls: dns.service
