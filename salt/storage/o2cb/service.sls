{#- o2cb online: the o2cb init script (loads configfs and the o2cb stack, mounts configfs and
    /dlm, registers O2CB_BOOTCLUSTER and writes the pillar timeouts to configfs), run only
    while the cluster is offline (its `status` exits 0 even then, so no service.running).
    Then the cluster is checked online by the o2cb state. Never restarted by a config change:
    o2cb cannot go offline under a mounted volume; new timeouts apply at the next start. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.o2cb.config

storage-o2cb-service-stack-cmd-run:
  cmd.run:
    - name: /etc/init.d/o2cb start
    - unless: o2cb cluster-status {{ storage.ocfs2.cluster }}
    - require:
      - sls: storage.o2cb.config

storage-o2cb-service-cluster-o2cb-cluster_online:
  o2cb.cluster_online:
    - name: {{ storage.ocfs2.cluster }}
    - require:
      - cmd: storage-o2cb-service-stack-cmd-run
