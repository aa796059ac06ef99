{%- from "selfheal/map.jinja" import selfheal with context %}
{%- set w = selfheal.watchdog %}
# selfheal.watchdog: restart a salt-minion that no longer hears its master (Salt 3008.4 can
# leave a minion connected but deaf after a master restart; docs/selfheal.md, "Deaf
# minions"). The master's engine touches `heard_file` on every node; a systemd timer checks it.
{%- if not w.enabled %}
include:
  - selfheal.watchdog.clean
{%- else %}
{%- set master = salt["config.get"]("master") %}
{%- set master = master[0] if master is not string else master %}
{%- set settings = {
      "heard_file": w.heard_file,
      "deaf_after": w.deaf_after,
      "backoff": w.backoff,
      "state_file": "/var/lib/mailcluster/minion-watchdog.state",
      "unit": "salt-minion",
      "master": master,
      "master_port": salt["config.get"]("master_port", 4506),
    } %}

selfheal-watchdog-state-dir-file-directory:
  file.directory:
    - name: /var/lib/mailcluster
    - mode: "0755"

selfheal-watchdog-script-file-managed:
  file.managed:
    - name: /usr/local/lib/mailcluster/minion_watchdog.py
    - source: salt://selfheal/files/minion_watchdog.py
    - makedirs: true
    - mode: "0644"

selfheal-watchdog-settings-file-serialize:
  file.serialize:
    - name: /etc/mailcluster/minion-watchdog.json
    - dataset: {{ settings | json }}
    - serializer: json
    - makedirs: true
    - mode: "0644"

selfheal-watchdog-service-file-managed:
  file.managed:
    - name: /etc/systemd/system/mailcluster-minion-watchdog.service
    - mode: "0644"
    - contents: |
        # Managed by Salt (selfheal.watchdog)
        [Unit]
        Description=mailcluster: restart a salt-minion that no longer hears its master
        [Service]
        Type=oneshot
        ExecStart={{ grains["pythonexecutable"] }} /usr/local/lib/mailcluster/minion_watchdog.py /etc/mailcluster/minion-watchdog.json

selfheal-watchdog-timer-file-managed:
  file.managed:
    - name: /etc/systemd/system/mailcluster-minion-watchdog.timer
    - mode: "0644"
    - contents: |
        # Managed by Salt (selfheal.watchdog)
        [Unit]
        Description=mailcluster: check every {{ w.check_interval }} s that salt-minion hears its master
        [Timer]
        OnActiveSec={{ w.check_interval }}
        OnUnitActiveSec={{ w.check_interval }}
        AccuracySec=1s
        [Install]
        WantedBy=timers.target

selfheal-watchdog-timer-service-running:
  service.running:
    - name: mailcluster-minion-watchdog.timer
    - enable: true
    - require:
      - file: selfheal-watchdog-state-dir-file-directory
      - file: selfheal-watchdog-script-file-managed
      - file: selfheal-watchdog-settings-file-serialize
      - file: selfheal-watchdog-service-file-managed
    - watch:
      - file: selfheal-watchdog-timer-file-managed
{%- endif %}
