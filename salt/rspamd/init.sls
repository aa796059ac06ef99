{%- from "rspamd/map.jinja" import rspamd with context %}
# rspamd: spam filtering and DKIM signing on the mail nodes (included by the mail role), as
# postfix's milter; a Redis per node (docs/spam-dkim.md). `rspamd:enabled: false` removes it.
include:
{%- if rspamd.enabled %}
  - rspamd.package
  - rspamd.config
  - rspamd.service
{%- else %}
  - rspamd.clean
{%- endif %}
