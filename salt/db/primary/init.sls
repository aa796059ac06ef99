# db.primary: the MariaDB every write goes to; Postfix Admin's schema, SQL users, pillar rows.
include:
  - db
  - db.schema
  - db.users
  - db.domains
