{#- o2cb cluster from pillar: /etc/default/o2cb (boot cluster, timeouts) and cluster.conf
    through the o2cb tool with the stable node numbers pillar gives. Timeouts take effect
    when the cluster next comes online (o2cb refuses to change them while it is in use). #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- set o = storage.ocfs2 %}
include:
  - storage.package

storage-o2cb-config-defaults-file-managed:
  file.managed:
    - name: /etc/default/o2cb
    - source: salt://storage/files/o2cb-default.jinja
    - template: jinja
    - mode: '0644'
    - context:
        storage: {{ storage | json }}
    - require:
      - sls: storage.package

storage-o2cb-config-cluster-o2cb-cluster_present:
  o2cb.cluster_present:
    - name: {{ o.cluster }}
    - heartbeat_mode: {{ o.heartbeat_mode }}
    - nodes:
{%- for name, node in storage.nodes | dictsort %}
        {{ name }}:
          number: {{ node.number }}
          ip_address: {{ node.address }}
          ip_port: {{ o.port }}
{%- endfor %}
    - require:
      - sls: storage.package
