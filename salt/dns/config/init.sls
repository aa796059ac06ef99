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
{%- if dns.get("acme") %}

# the ACME TSIG key (salt/acme): certbot on the mail and web nodes signs its DNS-01 updates
# with it; named.conf.local lets it change only the _acme-challenge TXT records (a secret:
# no diff in the state's output)
dns-config-acme-key-file-managed:
  file.managed:
    - name: {{ dns.acme.key_file }}
    - contents: |
        key "{{ dns.acme.key_name }}" {
          algorithm {{ dns.acme.tsig.algorithm }};
          secret "{{ dns.acme.tsig.secret }}";
        };
    - user: root
    - group: bind
    - mode: "0640"
    - show_changes: false
    - check_cmd: named-checkconf
    - require:
      - sls: dns.package
{%- endif %}
