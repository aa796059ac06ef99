{%- from "fail2ban/map.jinja" import fail2ban with context %}
{%- set c = fail2ban.cluster %}

include:
  - fail2ban.package

# fail2ban refuses to start when a jail's log file is missing (rsyslog makes a file at its
# first line): made empty, as rsyslog would, and left alone (owner, mode) once it exists
{%- for log in c.logs %}
fail2ban-config-log-{{ loop.index }}-file-managed:
  file.managed:
    - name: {{ log }}
    - unless: test -e {{ log }}
    - user: {{ fail2ban.log_create.user }}
    - group: {{ fail2ban.log_create.group }}
    - mode: "{{ fail2ban.log_create.mode }}"
    - require:
      - sls: fail2ban.package
    - require_in:
      - cmd: fail2ban-config-check-cmd-run
{%- endfor %}

# Postfix Admin has no filter in Debian's fail2ban: the role's, from its real log line
fail2ban-config-filter-postfixadmin-file-managed:
  file.managed:
    - name: {{ fail2ban.filter_dir }}/mailcluster-postfixadmin.conf
    - source: salt://fail2ban/files/mailcluster-postfixadmin.conf
    - mode: "0644"
    - require:
      - sls: fail2ban.package

# the peer ban's action: a Salt event to the master on ban and unban
fail2ban-config-action-event-file-managed:
  file.managed:
    - name: {{ fail2ban.action_dir }}/{{ fail2ban.peer_ban.action }}.conf
    - source: salt://fail2ban/files/mailcluster-event.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ fail2ban | json }}
    - require:
      - sls: fail2ban.package

fail2ban-config-jails-file-managed:
  file.managed:
    - name: {{ fail2ban.jail_file }}
    - source: salt://fail2ban/files/mailcluster.local.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ fail2ban | json }}
    - require:
      - file: fail2ban-config-filter-postfixadmin-file-managed
      - file: fail2ban-config-action-event-file-managed

# fail2ban-client -t reads the whole configuration (jail.conf, jail.d, filters, actions) as
# the server would, and fails on a bad one before the service reloads it
fail2ban-config-check-cmd-run:
  cmd.run:
    - name: fail2ban-client --test
    - onchanges:
      - file: fail2ban-config-filter-postfixadmin-file-managed
      - file: fail2ban-config-action-event-file-managed
      - file: fail2ban-config-jails-file-managed
