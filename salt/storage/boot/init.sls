{#- The store at boot (backend drbd_ocfs2): a node that starts (a power cut, a reboot) brings
    DRBD up, waits for its peer, promotes and mounts OCFS2 by itself, before postfix, dovecot
    and the mover (mail:vmail's guard orders them after this unit and keeps them down while
    the store is not mounted). Started here once the store is up, so that a shutdown runs its
    stop (unmount, an orderly DRBD down). Never restarted by Salt: a restart unmounts the
    store under the mail services; a changed script applies at the next start. The unit only
    where systemd runs the node (grain init); the script everywhere, to be run by hand or by
    another init (the vm tier's guests run it so). #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.mount

storage-boot-script-file-managed:
  file.managed:
    - name: /usr/local/sbin/mailcluster-store
    - source: salt://storage/files/mailcluster-store.jinja
    - template: jinja
    - mode: "0755"
    - context:
        storage: {{ storage | json }}

{%- if grains.get("init") == "systemd" %}

storage-boot-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/mailcluster-store.service
    - source: salt://storage/files/mailcluster-store.service.jinja
    - template: jinja
    - mode: "0644"
    - context:
        storage: {{ storage | json }}

# systemd reads unit files on daemon-reload only
storage-boot-systemd-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: storage-boot-unit-file-managed

storage-boot-unit-service-running:
  service.running:
    - name: mailcluster-store
    - enable: true
    - require:
      - file: storage-boot-script-file-managed
      - cmd: storage-boot-systemd-cmd-run
      - mount: storage-mount-volume-mount-mounted
{%- endif %}
