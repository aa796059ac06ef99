{%- from "selfheal/map.jinja" import selfheal with context %}
# selfheal.beacon.clean: remove the beacon (the master then only sees presence events).

selfheal-beacon-clean-mailcluster-ha-beacon-absent:
  beacon.absent:
    - name: {{ selfheal.beacon.name }}
    - save: true
