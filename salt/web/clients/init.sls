{%- from "common/map.jinja" import mapdata as web with context %}
# web.clients: per mail domain (mailcluster_records.client_sites), the MTA-STS policy
# (https://mta-sts.<domain>/.well-known/mta-sts.txt: its digest is the domain's _mta-sts id),
# Thunderbird's autoconfig (autoconfig.<domain>/mail/config-v1.1.xml) and Outlook's
# autodiscover (autodiscover.<domain>/autodiscover/autodiscover.xml, answered to its POST).
# lighttpd serves each domain's folder on its web names (lighttpd-mailcluster.conf.jinja);
# the folder of a domain no longer served is removed.

include:
  - web.package
{%- set root = web.clients.root %}
{%- for site in web.cluster.sites %}

web-clients-{{ site.domain }}-mta-sts-file-managed:
  file.managed:
    - name: {{ root }}/{{ site.domain }}/.well-known/mta-sts.txt
    - contents: {{ site.mta_sts.text | json }}
    - makedirs: true
    - mode: "0644"
    - require:
      - sls: web.package
    - require_in:
      - file: web-clients-root-file-directory

web-clients-{{ site.domain }}-autoconfig-file-managed:
  file.managed:
    - name: {{ root }}/{{ site.domain }}/mail/config-v1.1.xml
    - source: salt://web/files/autoconfig.xml.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        site: {{ site | json }}
    - require:
      - sls: web.package
    - require_in:
      - file: web-clients-root-file-directory

web-clients-{{ site.domain }}-autodiscover-file-managed:
  file.managed:
    - name: {{ root }}/{{ site.domain }}/autodiscover/autodiscover.xml
    - source: salt://web/files/autodiscover.xml.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        site: {{ site | json }}
    - require:
      - sls: web.package
    - require_in:
      - file: web-clients-root-file-directory
{%- endfor %}

web-clients-root-file-directory:
  file.directory:
    - name: {{ root }}
    - mode: "0755"
    - clean: true
    - require:
      - sls: web.package
