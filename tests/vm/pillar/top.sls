# Pillar of the qemu guest pair (tests/vm): mx1 10.99.0.11 and mx2 10.99.0.12 on the
# runner's private network, storage backend drbd_ocfs2 on the spare disk /dev/vdb.
base:
  '*':
    - topology
    - storage
