{%- from "fail2ban/map.jinja" import fail2ban with context %}

fail2ban-package-pkgs-pkg-installed:
  pkg.installed:
    - pkgs: {{ fail2ban.packages | json }}
