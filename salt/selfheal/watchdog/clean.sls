# selfheal.watchdog.clean: remove the minion watchdog (init.sls) in reverse.

selfheal-watchdog-clean-timer-service-dead:
  service.dead:
    - name: mailcluster-minion-watchdog.timer
    - enable: false

{%- for path in [
      "/etc/systemd/system/mailcluster-minion-watchdog.timer",
      "/etc/systemd/system/mailcluster-minion-watchdog.service",
      "/etc/mailcluster/minion-watchdog.json",
      "/usr/local/lib/mailcluster/minion_watchdog.py",
      "/var/lib/mailcluster/minion-watchdog.state",
    ] %}

selfheal-watchdog-clean-{{ path | replace("/", "-") | trim("-") }}-file-absent:
  file.absent:
    - name: {{ path }}
    - require:
      - service: selfheal-watchdog-clean-timer-service-dead
{%- endfor %}
