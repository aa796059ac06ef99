{%- from "common/map.jinja" import mapdata as dns with context %}
# dns.primary: zones computed from pillar by _modules/mailcluster_dns.py. Zone files are
# written by one state for all zones: a changed zone is frozen (rndc freeze merges the journal of
# dynamic updates), checked with named-checkzone, replaced and thawed; its serial only moves
# when its records change. New zones are loaded by `rndc reconfig`.

include:
  - dns

dns-primary-zone-dir-file-directory:
  file.directory:
    - name: {{ dns.primary_dir }}
    - user: bind
    - group: bind
    - mode: "2775"
    - require:
      - sls: dns.package

dns-primary-zones-mailcluster-zones-synced:
  mailcluster.zones_synced:
    - name: {{ dns.primary_dir }}
    # only given by the failover runner (pillar dns:serial_floor on its state.sls call)
    - serial_floor: {{ dns.get("serial_floor") or {} | json }}
    - require:
      - file: dns-primary-zone-dir-file-directory
      - sls: dns.service

dns-primary-local-file-managed:
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
      - mailcluster: dns-primary-zones-mailcluster-zones-synced
      - file: dns-config-tsig-key-file-managed

# loads added zones and drops removed ones without reloading the others
dns-primary-reconfig-cmd-run:
  cmd.run:
    - name: rndc reconfig
    - onchanges:
      - file: dns-primary-local-file-managed
    - require:
      - sls: dns.service
