{%- from "common/map.jinja" import mapdata as common with context %}
# Undo common: the node's TLS material (hosts and resolv.conf are left as they are).

common-clean-tls-dir-file-absent:
  file.absent:
    - name: {{ common.tls.dir }}
