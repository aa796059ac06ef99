# acme: this node's certificate for every name a user or an MTA uses for a domain, from an
# ACME CA by DNS-01 through the cluster's BIND (certbot + rfc2136, TSIG key limited to the
# _acme-challenge TXT records), served by SNI next to the cluster CA's node certificate
# (common.tls), renewed by certbot's timer, services reloaded by the deploy hook.
# Without pillar acme:server, or on a node whose certificate would hold no name, nothing.
# docs/acme.md.
{%- from "acme/map.jinja" import acme with context %}
{%- if acme.on and acme.cluster.names %}
include:
  - acme.package
  - acme.config
  - acme.seed
  - acme.certificate
{%- endif %}
