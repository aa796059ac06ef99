# Brute-force protection of the lab (the fail2ban role, salt/fail2ban; keys in pillar.example
# and salt/fail2ban/parameters/schema.yaml). Short times, so that tests/lab/test_fail2ban.py
# sees a ban made, shared with the peers and lifted within a minute.
fail2ban:
  bantime: 30
  findtime: 120
  maxretry: 3
  # the lab host: every lab test runs its clients from it, some with wrong passwords on
  # purpose (the fail2ban test uses addresses of its own, 10.88.0.250-253)
  ignoreip:
    - 10.88.0.1
