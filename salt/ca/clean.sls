{%- from "common/map.jinja" import mapdata as ca with context %}
# Undo ca: DESTROYS the cluster CA. The next apply of this role makes a new one (or installs
# mailcluster:secrets:ca), and every node's next apply gets a certificate from it.

ca-clean-dir-file-absent:
  file.absent:
    - name: {{ ca.dir }}
