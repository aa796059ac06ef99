include:
  - mail.postfix.package
  - mail.postfix.config
  - mail.postfix.service
