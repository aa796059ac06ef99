{%- from "common/map.jinja" import mapdata as ha with context %}
{%- set own = ha.cluster.resources | selectattr("node", "equalto", grains["id"]) | list %}
{#- on a mail node heartbeat takes its service IP only once postfix and dovecot run (the
    store they need mounted before them: mail.vmail requires the storage role) #}
{%- set mail_here = "mail" in salt["mailcluster.node_roles"]() %}

include:
  - ha.config
{%- if mail_here %}
  - mail.postfix.service
  - mail.dovecot.service
{%- endif %}
{%- if ha.mover == "keepalived" %}
  - ha.keepalived.service
{%- endif %}

{%- if ha.mover == "keepalived" %}

# keepalived moves the IPs (ha:mover): heartbeat stops only once keepalived runs, so that a
# switch leaves no moment without a mover; heartbeat's stop takes the addresses away with it
# (IPaddr2 stop), which keepalived, MASTER already, puts back at its reload
ha-service-heartbeat-service-dead:
  service.dead:
    - name: {{ ha.service }}
    - enable: false
    - require:
      - sls: ha.config
      - sls: ha.keepalived.service

ha-service-keepalived-addresses-cmd-run:
  cmd.run:
    - name: systemctl reload {{ ha.keepalived.service }}
    - onchanges:
      - service: ha-service-heartbeat-service-dead
{%- elif grains.get("mailcluster_ha_standby") %}

# The master stopped heartbeat here to settle a partition of the pair (docs/selfheal.md): the
# peer serves both service IPs until the link is back, when the master clears the grain and
# starts heartbeat. A highstate meanwhile must not start it (each address would be twice).
ha-service-heartbeat-service-dead:
  service.dead:
    - name: {{ ha.service }}
    - require:
      - sls: ha.config
{%- else %}

# Debian's heartbeat unit has no reload: a changed ha.cf/haresources/authkeys restarts it
# (the peer holds this node's service IP meanwhile; auto_failback brings it back)
ha-service-heartbeat-service-running:
  service.running:
    - name: {{ ha.service }}
    - enable: true
    - watch:
      - sls: ha.config
{%- if mail_here %}
    - require:
      - service: mail-postfix-service-postfix-service-running
      - service: mail-dovecot-service-dovecot-service-running
{%- endif %}

# the daemon answers cl_status (issue 3's heartbeat state); the peer is not waited for, so
# highstate still works on the survivor while the other node is down
ha-service-heartbeat-heartbeat-running:
  heartbeat.running:
    - name: {{ ha.service }}
    - timeout: 30
    - require:
      - service: ha-service-heartbeat-service-running

# heartbeat is the mover: keepalived (a former mover) stops once heartbeat runs; its stop
# takes this node's own address away, which is put straight back (same node, same MAC: no
# ARP needed; heartbeat's IPaddr2 start took 2 s here, the address missing meanwhile)
ha-service-keepalived-service-dead:
  service.dead:
    - name: {{ ha.keepalived.service }}
    - enable: false
    # not installed (never switched to keepalived): nothing to stop, also in test mode
    - onlyif: systemctl cat {{ ha.keepalived.service }}.service
    - require:
      - heartbeat: ha-service-heartbeat-heartbeat-running
{%- for r in own %}

ha-service-heartbeat-address-{{ loop.index }}-cmd-run:
  cmd.run:
    - name: ip addr replace {{ r.ip }}/{{ r.prefix }} dev {{ ha.cluster.interface }}
    - onchanges:
      - service: ha-service-keepalived-service-dead
{%- endfor %}
{%- endif %}
