# db: pick db.primary or db.replica (pillar roles db_primary / db_replica select them).
include:
  - db.package
  - db.config
  - db.service
