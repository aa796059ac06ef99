{%- from "common/map.jinja" import mapdata as mail with context %}
{%- set v = mail.vmail %}
# The owner of every Maildir, with the same ids on both nodes of the shared store.

include:
  - storage

mail-vmail-group-group-present:
  group.present:
    - name: {{ v.group }}
    - gid: {{ v.gid }}

mail-vmail-user-user-present:
  user.present:
    - name: {{ v.user }}
    - uid: {{ v.uid }}
    - gid: {{ v.gid }}
    - home: {{ v.home }}
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - group: mail-vmail-group-group-present

mail-vmail-maildirs-file-directory:
  file.directory:
    - name: {{ v.maildirs }}
    - user: {{ v.user }}
    - group: {{ v.group }}
    - mode: "0770"
    - require:
      - user: mail-vmail-user-user-present
      - sls: storage
{#- the guard's drop-ins: written with store_mount set, removed when it is '' #}
{%- set guard = "managed" if v.store_mount else "absent" %}
{%- for unit in v.guarded_units %}

mail-vmail-guard-{{ unit }}-file-{{ guard }}:
  file.{{ guard }}:
    - name: /etc/systemd/system/{{ unit }}.d/mailcluster-store.conf
{%- if v.store_mount %}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (mail role): no mail service without the shared Maildir store.
        [Unit]
        RequiresMountsFor={{ v.maildirs }}
        ConditionPathIsMountPoint={{ v.store_mount }}
        # at boot, after the unit that mounts the store (storage role, drbd_ocfs2)
        After=mailcluster-store.service
{%- endif %}
{%- endfor %}

# systemd reads drop-ins on daemon-reload only
mail-vmail-guard-systemd-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%- for unit in v.guarded_units %}
      - file: mail-vmail-guard-{{ unit }}-file-{{ guard }}
{%- endfor %}
