{%- from "rspamd/map.jinja" import rspamd with context %}

rspamd-package-redis-pkg-installed:
  pkg.installed:
    - pkgs: {{ rspamd.redis.packages | json }}

rspamd-package-rspamd-pkg-installed:
  pkg.installed:
    - pkgs: {{ rspamd.packages | json }}
    - require:
      - pkg: rspamd-package-redis-pkg-installed
