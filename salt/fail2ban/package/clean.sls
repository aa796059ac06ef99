{%- from "fail2ban/map.jinja" import fail2ban with context %}
include:
  - fail2ban.config.clean

fail2ban-package-clean-pkgs-pkg-removed:
  pkg.removed:
    - pkgs: {{ fail2ban.packages | json }}
    - require:
      - sls: fail2ban.config.clean
