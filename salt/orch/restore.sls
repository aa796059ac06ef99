# orch.restore: bring the databases and the Maildirs back from a backup set (docs/backup.md).
#   salt-run state.orchestrate orch.restore                       # the latest set
#   salt-run state.orchestrate orch.restore pillar='{"set": "20261201T133000Z"}'
#   ... pillar='{"store_node": "mx2"}'   # restore the store from mx2 (mx1, the first, is down)
#   ... pillar='{"target_node": "bk1"}'  # the target, when the master's pillar lacks backup:
# Order: the timer on the target stops (no set is taken or pruned meanwhile), the DB primary
# loads the dumps (replicas follow by replication), one store node copies the Maildirs back
# (no --delete: mail delivered since the loss stays), then a highstate everywhere, which starts
# the timer again and finds the restored rows matching pillar (domains_synced changes nothing
# unless pillar changed after the set was taken). Safe to run twice.
{%- set set_name = salt["pillar.get"]("set", "latest") %}
{%- set store_node = salt["pillar.get"]("store_node") %}
{%- set target = salt["pillar.get"]("target_node") or salt["pillar.get"]("backup:target:node") %}
{%- set tool = "/usr/local/sbin/mailcluster-backup" %}

orch-restore-timer-salt-function:
  salt.function:
    - name: service.stop
    - tgt: {{ target | json }}
    - arg:
      - mailcluster-backup.timer

orch-restore-db-salt-function:
  salt.function:
    - name: cmd.run
    - tgt: 'I@mailcluster:node:roles:db_primary and I@mailcluster:node:roles:backup'
    - tgt_type: compound
    - arg:
      - {{ tool }} restore-db {{ set_name }}
    # the tool's exit status is the step's result (a non-zero retcode fails the step)
    - kwarg:
        python_shell: false
    - require:
      - salt: orch-restore-timer-salt-function

orch-restore-maildirs-salt-function:
  salt.function:
    - name: cmd.run
{%- if store_node %}
    - tgt: {{ store_node | json }}
    - arg:
      - {{ tool }} restore-maildirs {{ set_name }} --force
{%- else %}
    - tgt: 'I@mailcluster:node:roles:storage and I@mailcluster:node:roles:backup'
    - tgt_type: compound
    - arg:
      - {{ tool }} restore-maildirs {{ set_name }}
{%- endif %}
    - kwarg:
        python_shell: false
    - require:
      - salt: orch-restore-db-salt-function

orch-restore-highstate-salt-state:
  salt.state:
    - tgt: '*'
    - highstate: true
    - require:
      - salt: orch-restore-maildirs-salt-function
