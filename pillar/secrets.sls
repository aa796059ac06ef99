# Secrets of the lab cluster. LAB VALUES ONLY: replace every value for a real site (and keep
# this file out of the repository there, e.g. in a separate pillar root or an encrypted renderer).
# Keys are documented in pillar.example.
# No `ca` here: the master makes the cluster CA at first apply and keeps its key (salt/ca,
# /etc/pki/mailcluster/ca.key). A site's own CA goes under secrets:ca (cert and key,
# pillar.example), best encrypted with the gpg renderer.
mailcluster:
  secrets:
    db:
      replication: lab-repl-Tf8Qznsjh8qj
      postfix: lab-postfix-c0d514f566
      dovecot: lab-dovecot-21e02c754c
      postfixadmin: lab-pfa-d317a9b0e1
      roundcube: lab-rc-4b7f20c9d2
    heartbeat:
      authkey: lab-hb-9e1c4f0a77d2b3c8
    tsig:
      algorithm: hmac-sha256
      secret: U5JZ1fz8cm8KFWUuBxx6b/wsocmTPfpckWe0JSnrvsc=
    acme:   # certbot's DNS-01 updates (acme role): BIND lets it change _acme-challenge TXT only
      secret: JQXirzGb+HFIoWe/8Wz5+bwChsDYT3V+DMxOiu7A/NQ=
    roundcube:
      des_key: lab-rc-deskey-0123456789
    postfixadmin:
      setup_password: lab-setup-pw-8c1d
      admin_password: lab-admin-pw-5e2a
    backup:
      rsync: lab-rsync-6d0b3e91c27a   # rsync daemons' user mcbackup (backup role)
      db: lab-backup-db-a41f7c0e59   # SQL user mcbackup, read-only, from the target
    mailboxes:
      alice@example.test: alice-lab-pw
      bob@example.test: bob-lab-pw
      carol@example.test: carol-lab-pw
      dave@sales.test: dave-lab-pw
