include:
  - storage.drbd.config
  - storage.drbd.service
