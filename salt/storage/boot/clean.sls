{#- Reverse of boot/init.sls: the unit stopped (its stop unmounts the store and takes DRBD
    down, as storage.mount.clean and storage.drbd.clean do after it), disabled, removed. #}
{%- set systemd = grains.get("init") == "systemd" %}
{%- if systemd %}

storage-boot-clean-unit-service-dead:
  service.dead:
    - name: mailcluster-store
    - enable: false
{%- endif %}

storage-boot-clean-files-file-absent:
  file.absent:
    - names:
      - /etc/systemd/system/mailcluster-store.service
      - /usr/local/sbin/mailcluster-store
{%- if systemd %}
    - require:
      - service: storage-boot-clean-unit-service-dead

storage-boot-clean-systemd-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: storage-boot-clean-files-file-absent
{%- endif %}
