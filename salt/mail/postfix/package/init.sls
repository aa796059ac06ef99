{%- from "common/map.jinja" import mapdata as mail with context %}

mail-postfix-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ mail.postfix.packages | json }}
