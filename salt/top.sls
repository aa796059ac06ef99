# Roles come from pillar (mailcluster:nodes:<id>:roles), never from host names.
# mailcluster.top_sls validates the whole pillar first: bad pillar makes this file fail to
# render, so a highstate stops before any state runs, with the offending pillar key named.
base:
  '{{ grains["id"] }}': {{ salt["mailcluster.top_sls"]() | json }}
