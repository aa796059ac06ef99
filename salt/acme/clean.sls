{%- from "acme/map.jinja" import acme with context %}
# Undo acme: the lab's pebble, certbot's lineage, the deploy hook, the credentials and the
# installed ACME certificate. The services' configs stop naming the ACME files once pillar
# acme:server is gone: remove it (and apply mail and web) before this.

acme-clean-pebble-service-dead:
  service.dead:
    - name: {{ acme.pebble.service }}
    - enable: false

acme-clean-pebble-unit-file-absent:
  file.absent:
    - name: /etc/systemd/system/{{ acme.pebble.service }}.service
    - require:
      - service: acme-clean-pebble-service-dead

acme-clean-lineage-cmd-run:
  cmd.run:
    - name: certbot delete --non-interactive --cert-name {{ acme.cert_name }}
    - onlyif: test -e {{ acme.config_dir }}/renewal/{{ acme.cert_name }}.conf

acme-clean-files-file-absent:
  file.absent:
    - names:
      - {{ acme.credentials }}
      - {{ acme.hook }}
      - /etc/systemd/system/certbot.service.d/mailcluster.conf
      - {{ acme.sni_map }}
      - {{ acme.sni_map }}.db
      - {{ acme.cert }}
      - {{ acme.key }}
    - require:
      - cmd: acme-clean-lineage-cmd-run
