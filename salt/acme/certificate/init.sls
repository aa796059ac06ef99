{%- from "acme/map.jinja" import acme with context %}
{%- set sni = "mail" in salt["mailcluster.node_roles"]() %}

include:
  - acme.config
  - acme.seed

# a new order only when the lineage is missing, its names or server changed, or it is due;
# a server that does not answer fails here, naming it, and the services keep the files they
# read (acme.seed's, or the last certificate the deploy hook installed)
acme-certificate-mailcluster-acme-certificate:
  mailcluster_acme.certificate:
    - name: {{ acme.cert_name }}
    - dns_names: {{ acme.cluster.names | json }}
    - server: {{ acme.server | json }}
    - email: {{ acme.email | json }}
    - credentials: {{ acme.credentials }}
    - hook: {{ acme.hook }}
    - deployed: {{ acme.cert }}
    - server_ca: {{ acme.server_ca | json }}
    - key_type: {{ acme.key_type }}
    - propagation_seconds: {{ acme.propagation_seconds }}
    - renew_days: {{ acme.renew_days }}
    - timeout: {{ acme.timeout }}
    - config_dir: {{ acme.config_dir }}
    - retry: {{ {"attempts": acme.retry.attempts, "interval": acme.retry.interval, "until": true} | json }}
    - require:
      - sls: acme.config
      - file: acme-seed-cert-file-copy
{%- if sni %}
      - cmd: acme-seed-sni-map-cmd-run
{%- endif %}
