# Pillar of `lab/lab up --storage drbd` (copied to pillar/lab.sls by `up`, removed by `down`):
# mx1 and mx2 are qemu guests with their own kernel, so the mail pair's store is the seed's:
# DRBD 8.4 dual primary on each guest's spare disk (/dev/vdb) and OCFS2 (o2cb) on top, at the
# same mount point the shared_path backend uses. DRBD and o2cb run over the lab network.
storage:
  backend: drbd_ocfs2
  nodes:
    mx1:
      address: 10.88.0.11
      number: 1
    mx2:
      address: 10.88.0.12
      number: 2
  drbd:
    resource: r0
    disk: /dev/vdb
    # lab-only value (a real site keeps it in its secrets pillar)
    shared_secret: lab-drbd-secret-not-for-production
    initial_primary: mx1
  ocfs2:
    cluster: mailstore
    label: vmail
    journal_size: 8M
