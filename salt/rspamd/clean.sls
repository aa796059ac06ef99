{%- from "rspamd/map.jinja" import rspamd with context %}
# Undo rspamd: stop it and drop our settings and the DKIM keys (the master keeps them).
# Redis and the packages stay (Redis may serve others; the Bayes data stays with it). The
# mail role leaves the milter out of postfix while rspamd:enabled is false.

rspamd-clean-rspamd-service-dead:
  service.dead:
    - name: {{ rspamd.service }}
    - enable: false

rspamd-clean-dkim-dir-file-absent:
  file.absent:
    - name: {{ rspamd.dkim_dir }}
    - require:
      - service: rspamd-clean-rspamd-service-dead

rspamd-clean-override-options-inc-file-absent:
  file.absent:
    - name: {{ rspamd.override_dir }}/options.inc
    - require:
      - service: rspamd-clean-rspamd-service-dead

rspamd-clean-override-file-absent:
  file.absent:
    - name: {{ rspamd.override_file }}
    - require:
      - service: rspamd-clean-rspamd-service-dead
{%- for name in ["options.inc", "worker-proxy.inc", "worker-normal.inc", "worker-controller.inc",
                 "actions.conf", "redis.conf", "dkim_signing.conf", "milter_headers.conf"] %}

rspamd-clean-{{ name | replace(".", "-") | replace("_", "-") }}-file-absent:
  file.absent:
    - name: {{ rspamd.local_dir }}/{{ name }}
    - require:
      - service: rspamd-clean-rspamd-service-dead
{%- endfor %}
