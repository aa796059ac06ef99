# fail2ban.clean: undo the fail2ban role in reverse (service stopped, which removes its
# nftables table; the role's files; the package). Bans are lost with it.
include:
  - fail2ban.package.clean
