{#- The DRBD resource file, first written WITHOUT allow-two-primaries (replace: False: only
    when the file does not exist yet). drbd/service.sls writes the final file, with
    allow-two-primaries, once the initial sync is done. Both are checked by drbdadm first. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.package

# may hold the DRBD shared-secret (storage:drbd:shared_secret): no diff in the state's output
storage-drbd-config-resource-initial-file-managed:
  file.managed:
    - name: {{ storage.drbd.config_dir }}/{{ storage.drbd.resource }}.res
    - source: salt://storage/files/drbd-resource.res.jinja
    - template: jinja
    - replace: false
    - mode: '0600'
    - show_changes: false
    - check_cmd: drbdadm dump all -c
    - context:
        storage: {{ storage | json }}
        two_primaries: false
    - require:
      - sls: storage.package
