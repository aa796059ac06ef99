"""The two throwaway receivers of bench/mail_bench.py, set up on a mail node and removed after.

- plain: a second postfix instance (its own config directory, queue and syslog name) with an
  smtpd on NODE_IP:2525 delivering with local(8) to ``home_mailbox = Maildir/`` of a local
  user: postfix -> local Maildir, no milter, no SQL, no LMTP, no shared store.
- sink: Postfix's smtp-sink on NODE_IP:2526 (accepts and discards): the ceiling.

Nothing of it is in the states: ``teardown`` removes the instance, the user and the sink, and
runs whatever happens (the bench calls it in a ``finally``). Port 2525/2526 are reached from
the node itself (the firewall opens only the mail ports to others; the load is made on the
receiving node for every path alike).
"""

from __future__ import annotations

import shlex

CONF = "/etc/postfix-mcbench"
QUEUE = "/var/spool/postfix-mcbench"
DATA = "/var/lib/postfix-mcbench"
USER = "mcbench"
DOMAIN = "mcbench.invalid"
PLAIN_PORT = 2525
SINK_PORT = 2526
SINK_UNIT = "mcbench-sink"
PLAIN_UNIT = "mcbench-plain"
SYSLOG_NAME = "postfix-mcbench"


def main_cf(ip: str) -> str:
    # the main instance's smtpd settings that shape the dialogue kept alike (helo required,
    # ipv4, compatibility level); mynetworks left out so neither path relays for the source
    return "\n".join(
        [
            f"queue_directory = {QUEUE}",
            f"data_directory = {DATA}",
            f"syslog_name = {SYSLOG_NAME}",
            "compatibility_level = 3.6",
            "inet_protocols = ipv4",
            f"inet_interfaces = {ip}",
            f"myhostname = {USER}.{DOMAIN}",
            f"mydestination = {DOMAIN}",
            "mynetworks = 127.0.0.0/8",
            "alias_maps =",
            "alias_database =",
            # proxymap: the chrooted smtpd cannot read the passwd file itself
            "local_recipient_maps = proxy:unix:passwd.byname",
            "home_mailbox = Maildir/",
            "biff = no",
            "recipient_delimiter = +",
            "smtpd_helo_required = yes",
            "smtpd_banner = $myhostname ESMTP",
            "",
        ]
    )


def setup_script(ip: str) -> str:
    """Shell run on the node: user, instance (master.cf from the package's own, smtpd moved
    to PLAIN_PORT with the main instance's chroot setting), start; smtp-sink as a transient
    unit."""
    q = shlex.quote
    return f"""set -e
id {USER} >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin {USER}
mkdir -p {CONF} {DATA}
chown postfix {DATA}
cat > {CONF}/main.cf <<'EOF'
{main_cf(ip)}EOF
sed -E -e 's/^smtp +inet +n +- +y +- +- +smtpd$/{ip}:{PLAIN_PORT} inet n - y - - smtpd/' \\
    -e '/^#/d' /usr/share/postfix/master.cf.dist > {CONF}/master.cf
grep -q '^{ip}:{PLAIN_PORT} ' {CONF}/master.cf
# the chrooted smtpd resolves through the chroot's own copies, as the main instance's does
mkdir -p {QUEUE}/etc
cp /etc/resolv.conf /etc/services /etc/hosts /etc/nsswitch.conf /etc/host.conf {QUEUE}/etc/
postfix -c {CONF} check
# in a unit of its own, so that its CPU is counted like the services' (cgroup usage_usec)
systemd-run --quiet --collect --unit={PLAIN_UNIT} -p Type=forking /usr/sbin/postfix -c {CONF} start
systemd-run --quiet --collect --unit={SINK_UNIT} /usr/sbin/smtp-sink -u postfix \\
    {q(f"{ip}:{SINK_PORT}")} 256
"""


def teardown_script() -> str:
    return f"""postfix -c {CONF} stop 2>/dev/null
systemctl stop {PLAIN_UNIT} 2>/dev/null
systemctl stop {SINK_UNIT} 2>/dev/null
rm -rf {CONF} {QUEUE} {DATA}
userdel -r {USER} 2>/dev/null
true
"""


def maildir_count_script() -> str:
    return f"ls /home/{USER}/Maildir/new 2>/dev/null | wc -l"
