{%- from "common/map.jinja" import mapdata as dns with context %}

include:
  - dns.package

dns-config-options-file-managed:
  file.managed:
    - name: /etc/bind/named.conf.options
    - source: salt://dns/files/named.conf.options.jinja
    - template: jinja
    - user: root
    - group: bind
    - mode: "0644"
    - check_cmd: named-checkconf
    - context:
        mapdata: {{ dns | json }}
    - require:
      - sls: dns.package

# the TSIG key for dynamic updates of the mail records (the failover reactor signs with it)
# (a secret: no diff in the state's output, nor in the job cache)
dns-config-tsig-key-file-managed:
  file.managed:
    - name: {{ dns.key_file }}
    - contents: |
        key "{{ dns.key_name }}" {
          algorithm {{ dns.cluster.tsig.algorithm }};
          secret "{{ dns.cluster.tsig.secret }}";
        };
    - user: root
    - group: bind
    - mode: "0640"
    - show_changes: false
    - check_cmd: named-checkconf
    - require:
      - sls: dns.package
