{%- from "common/map.jinja" import mapdata as dns with context %}
# dns.secondary: every cluster zone transferred from the primary (NOTIFY + IXFR).
# While the failover runner has made this secondary the acting primary (grain
# mailcluster_dns_acting_primary: the pillar primary is lost, docs/selfheal.md), it is a
# primary: a highstate then keeps it one instead of turning it back into a secondary of a
# dead node. The runner turns it back when the pillar primary has returned.
{%- if dns.cluster.role == "primary" %}

include:
  - dns.primary
{%- else %}

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

# A zone turned (back) into a secondary loads its old copy and would wait for the next NOTIFY
# or its refresh timer: after the failover runner gave the DNS back to a returned primary it
# served the records of before the failover for 18 s. Ask the primary now for each zone the
# configuration turns (back) into a secondary or gives another primary; not for the others
# (issue 14.2: one rndc call per zone was 10,000 calls for one added domain).
{%- set stale = salt["mailcluster_bind.to_refresh"](dns.cluster.zones, dns.cluster.primary_ip) %}
dns-secondary-refresh-cmd-run:
  cmd.run:
    - name: >-
        {%- for zone in stale %}
        rndc refresh {{ zone }} &&
        {%- endfor %}
        true
    - onchanges:
      - file: dns-secondary-local-file-managed
    - require:
      - cmd: dns-secondary-reconfig-cmd-run
{%- endif %}
