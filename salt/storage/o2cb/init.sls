include:
  - storage.o2cb.config
  - storage.o2cb.service
