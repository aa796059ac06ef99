{#- Backend drbd_ocfs2: packages, DRBD resource up to dual primary, o2cb cluster online,
    OCFS2 formatted once and mounted on both nodes; the unit that does it again at boot. #}
include:
  - storage.package
  - storage.drbd
  - storage.o2cb
  - storage.mount
  - storage.boot
