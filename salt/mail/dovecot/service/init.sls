{%- from "common/map.jinja" import mapdata as mail with context %}

include:
  - mail.dovecot.config
  - mail.vmail

mail-dovecot-service-dovecot-service-running:
  service.running:
    - name: {{ mail.dovecot.service }}
    - enable: true
    - reload: true
    - require:
      - sls: mail.vmail
    - watch:
      - sls: mail.dovecot.config
