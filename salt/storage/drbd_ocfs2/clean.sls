{#- Reverse of drbd_ocfs2/init.sls: unmount, take o2cb offline, take DRBD down, remove the
    packages. Data and DRBD metadata on the backing disk are left alone. #}
include:
  - storage.boot.clean
  - storage.mount.clean
  - storage.o2cb.clean
  - storage.drbd.clean
  - storage.package.clean
