{%- from "acme/map.jinja" import acme with context %}

acme-package-certbot-pkg-installed:
  pkg.installed:
    - pkgs: {{ acme.packages | json }}
