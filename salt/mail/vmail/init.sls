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
