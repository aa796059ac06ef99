{%- from "common/map.jinja" import mapdata as mail with context %}

include:
  - mail.postfix.config
  - mail.vmail

mail-postfix-service-postfix-service-running:
  service.running:
    - name: {{ mail.postfix.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: mail-postfix-config-check-cmd-run
      - sls: mail.vmail
    - watch:
      - sls: mail.postfix.config
