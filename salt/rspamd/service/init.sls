{%- from "rspamd/map.jinja" import rspamd with context %}

include:
  - rspamd.config

rspamd-service-redis-service-running:
  service.running:
    - name: {{ rspamd.redis.service }}
    - enable: true
    - require:
      - sls: rspamd.package

# a reload (SIGHUP) rereads the configuration and the keys; postfix's milter connections
# are served by the new workers
rspamd-service-rspamd-service-running:
  service.running:
    - name: {{ rspamd.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: rspamd-config-check-cmd-run
      - service: rspamd-service-redis-service-running
    - watch:
      - sls: rspamd.config
