{#- This minion's own topology entry, for targeting by role (orch/cluster.sls). #}
{%- import_yaml "topology.sls" as topology %}
mailcluster:
  node: {{ topology.mailcluster.nodes.get(grains["id"], {}) | json }}
