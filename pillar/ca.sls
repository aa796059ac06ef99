# The cluster CA's minion-side configuration (salt/ca, docs/roles.md "ca"), given only to the
# node with role master (the CA minion; node ids are the topology's node names):
# - one signing policy per node, `mailcluster-<node>`, that only that minion id may use
#   (`minions`). Its names and extensions are fixed here and override anything the request
#   asks for, so a node cannot get a certificate for another node's names. The names are the
#   ones the role facts give each node (_modules/mailcluster_map.py, _common_facts): its
#   FQDN, short name and mail.<cluster domain>; its IP, and on the HA pair both service IPs
#   (a node serves its peer's IP after a failover), else its own service IP.
# - the mine function the nodes read the CA certificate from (common.tls).
# The key and certificate paths are salt/ca/parameters/defaults.yaml's: change both together.
{%- import_yaml "topology.sls" as topology %}
{%- set mc = topology.mailcluster %}
{%- set nodes = mc.nodes %}
{%- set me = nodes.get(grains["id"], {}) %}
{%- if "master" in me.get("roles", []) %}
{%- set domain = mc.cluster.domain %}
{%- set ha = [] %}
{%- for name, node in nodes | dictsort if "ha" in node.get("roles", []) %}
{%- do ha.append(node.service_ip) %}
{%- endfor %}
x509_signing_policies:
{%- for name, node in nodes | dictsort %}
{%- set ips = [node.ip] %}
{%- if "ha" in node.get("roles", []) %}
{%- do ips.extend(ha) %}
{%- elif node.get("service_ip") %}
{%- do ips.append(node.service_ip) %}
{%- endif %}
{%- set san = [] %}
{%- for dns in [name ~ "." ~ domain, name, "mail." ~ domain] %}
{%- do san.append("DNS:" ~ dns) %}
{%- endfor %}
{%- for ip in ips %}
{%- do san.append("IP:" ~ ip) %}
{%- endfor %}
  mailcluster-{{ name }}:
    - minions: {{ name | json }}
    - signing_private_key: /etc/pki/mailcluster/ca.key
    - signing_cert: /etc/pki/mailcluster/ca.crt
    - CN: {{ (name ~ "." ~ domain) | json }}
    - subjectAltName: {{ san | join(", ") | json }}
    - basicConstraints: critical, CA:FALSE
    - keyUsage: critical, digitalSignature, keyEncipherment
    - extendedKeyUsage: serverAuth, clientAuth
    - subjectKeyIdentifier: hash
    - authorityKeyIdentifier: keyid:always
    - days_valid: 825
{%- endfor %}
mine_functions:
  mailcluster_ca:
    mine_function: x509.get_pem_entry
    text: /etc/pki/mailcluster/ca.crt
{%- endif %}
