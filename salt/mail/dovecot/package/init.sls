{%- from "common/map.jinja" import mapdata as mail with context %}

mail-dovecot-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ mail.dovecot.packages | json }}
