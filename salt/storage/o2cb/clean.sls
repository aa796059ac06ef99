{#- Take o2cb offline (after the volume is unmounted) and remove its configuration. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.mount.clean

storage-o2cb-clean-stack-cmd-run:
  cmd.run:
    - name: /etc/init.d/o2cb stop
    - onlyif: o2cb cluster-status {{ storage.ocfs2.cluster }}
    - require:
      - sls: storage.mount.clean

storage-o2cb-clean-cluster-conf-file-absent:
  file.absent:
    - name: /etc/ocfs2/cluster.conf
    - require:
      - cmd: storage-o2cb-clean-stack-cmd-run
