{%- from "acme/map.jinja" import acme with context %}

include:
  - acme.package

# certbot's rfc2136 credentials: the ACME TSIG key (a secret: no diff in the state's output,
# nor in the job cache; mode 0600, read by certbot as root)
acme-config-credentials-file-managed:
  file.managed:
    - name: {{ acme.credentials }}
    - source: salt://acme/files/rfc2136.ini.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0600"
    - makedirs: true
    - show_changes: false
    - context:
        mapdata: {{ acme | json }}
    - require:
      - sls: acme.package

# certbot runs it after each new certificate (from the state and from its timer): installs
# the certificate where the services read it and reloads them (no restart)
acme-config-hook-file-managed:
  file.managed:
    - name: {{ acme.hook }}
    - source: salt://acme/files/deploy-hook.sh.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0755"
    - context:
        mapdata: {{ acme | json }}
    - require:
      - sls: acme.package

# the timer's renewals trust the same CA file for the server's HTTPS as the state's orders
acme-config-timer-dropin-file-managed:
  file.managed:
    - name: /etc/systemd/system/certbot.service.d/mailcluster.conf
    - source: salt://acme/files/certbot-dropin.conf.jinja
    - template: jinja
    - mode: "0644"
    - makedirs: true
    - context:
        mapdata: {{ acme | json }}
    - require:
      - sls: acme.package

acme-config-timer-service-running:
  service.running:
    - name: {{ acme.timer }}
    - enable: true
    - watch:
      - file: acme-config-timer-dropin-file-managed
