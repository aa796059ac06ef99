{#- storage: the Maildir store shared by the mail pair, mounted at mount_point on both nodes.
    Backend from pillar storage:backend: drbd_ocfs2 (DRBD dual primary + OCFS2) or
    shared_path (a directory the environment already shares). Keys: pillar.example. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.{{ storage.backend }}
