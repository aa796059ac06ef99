# web: Roundcube and Postfix Admin on lighttpd + php-fpm, HTTPS with the cluster certificate.
# Sits on the DB primary (pillar validation enforces it): both apps write to the local MariaDB.
include:
  - web.package
  - web.config
  - web.clients
  - web.service
