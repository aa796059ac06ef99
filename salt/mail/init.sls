# mail: postfix (MariaDB maps, submission with SASL) and dovecot (IMAP, POP3, LMTP, SQL auth)
# on the pair's shared Maildir store. Runs on both nodes (active/active).
include:
  # spam filtering and DKIM signing, postfix's milter (salt/rspamd, docs/spam-dkim.md)
  - rspamd
  - mail.vmail
  - mail.postfix
  - mail.dovecot
