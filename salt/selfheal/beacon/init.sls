{%- from "selfheal/map.jinja" import selfheal with context %}
{%- set b = selfheal.beacon %}
# selfheal.beacon: the mailcluster_ha beacon (heartbeat peers, DRBD connections) on a node of
# the mail pair; its events go to reactor/beacon_peer.sls. Live, without a minion restart.

selfheal-beacon-sync-beacons-saltutil-sync-beacons:
  saltutil.sync_beacons:
    - name: selfheal-beacon-sync-beacons
    - refresh: true

selfheal-beacon-mailcluster-ha-beacon-present:
  beacon.present:
    - name: {{ b.name }}
    - save: true
    - heartbeat: {{ b.heartbeat | json }}
    - drbd: {{ b.drbd | json }}
    - interval: {{ b.interval | json }}
    - disable_during_state_run: {{ b.disable_during_state_run | json }}
    - require:
      - saltutil: selfheal-beacon-sync-beacons-saltutil-sync-beacons
