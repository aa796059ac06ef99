include:
  - mail.dovecot.package
  - mail.dovecot.config
  - mail.dovecot.service
