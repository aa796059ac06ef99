{%- from "rspamd/map.jinja" import rspamd with context %}
{#- rspamd's own settings: local.d files merged over the package's; the modules switched off
    in one override file (a whole section replaced by `enabled = false`) #}
{%- set local_files = ["options.inc", "worker-proxy.inc", "worker-normal.inc",
                       "worker-controller.inc", "actions.conf", "redis.conf",
                       "dkim_signing.conf", "milter_headers.conf"] %}

include:
  - rspamd.package

rspamd-config-dkim-dir-file-directory:
  file.directory:
    - name: {{ rspamd.dkim_dir }}
    - user: {{ rspamd.user }}
    - group: {{ rspamd.group }}
    - mode: "0750"
    - require:
      - sls: rspamd.package

# every signing domain's private key, from the master (pillar mailcluster_dkim), in one state
# (not one per domain: issue 14.2); its changes name the files only, never a key: nothing of
# a key reaches the state's output, the job cache or the minion's log
rspamd-config-dkim-keys-mailcluster-files-dkim-keys:
  mailcluster_files.dkim_keys:
    - name: {{ rspamd.dkim_dir }}
    - user: {{ rspamd.user }}
    - group: {{ rspamd.group }}
    - mode: "0640"
    - require:
      - file: rspamd-config-dkim-dir-file-directory
{%- if rspamd.cluster.missing %}

# mail of these domains goes out unsigned until the master gives their key pair
rspamd-config-dkim-missing-test-fail-without-changes:
  test.fail_without_changes:
    - name: >-
        {{ rspamd.cluster.missing | join(", ") }}: missing: the master's ext_pillar
        mailcluster_dkim gives no DKIM key (configure it: reactor/master.d/dkim.conf,
        docs/spam-dkim.md; a selector that is not a DNS label gets none)
{%- endif %}
{%- for name in local_files %}

rspamd-config-{{ name | replace(".", "-") | replace("_", "-") }}-file-managed:
  file.managed:
    - name: {{ rspamd.local_dir }}/{{ name }}
    - source: salt://rspamd/files/{{ name }}.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        mapdata: {{ rspamd | json }}
    - require:
      - sls: rspamd.package
{%- endfor %}

# local_addrs replaces the package's list (in local.d it would be added to it)
rspamd-config-override-options-inc-file-managed:
  file.managed:
    - name: {{ rspamd.override_dir }}/options.inc
    - source: salt://rspamd/files/override-options.inc.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        mapdata: {{ rspamd | json }}
    - require:
      - sls: rspamd.package

rspamd-config-override-file-managed:
  file.managed:
    - name: {{ rspamd.override_file }}
    - source: salt://rspamd/files/rspamd.conf.override.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        mapdata: {{ rspamd | json }}
    - require:
      - sls: rspamd.package

# rspamadm takes no single file: check the whole configuration after any change, before the
# service reloads (the service requires this state)
rspamd-config-check-cmd-run:
  cmd.run:
    - name: rspamadm configtest
    - onchanges:
      - file: rspamd-config-override-file-managed
      - file: rspamd-config-override-options-inc-file-managed
{%- for name in local_files %}
      - file: rspamd-config-{{ name | replace(".", "-") | replace("_", "-") }}-file-managed
{%- endfor %}
      - mailcluster_files: rspamd-config-dkim-keys-mailcluster-files-dkim-keys
