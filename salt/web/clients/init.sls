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

web-clients-root-file-directory:
  file.directory:
    - name: {{ root }}
    - mode: "0755"
    - require:
      - sls: web.package

# every domain's three files in one state (not three file.managed per domain: issue 14.2),
# which also removes what it does not list (the folder of a domain no longer served)
web-clients-sites-mailcluster-files-client-sites:
  mailcluster_files.client_sites:
    - name: {{ root }}
    - require:
      - file: web-clients-root-file-directory
