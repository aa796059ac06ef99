# Storage of the guest pair: DRBD r0 on /dev/vdb, dual primary, OCFS2 at /var/vmail.
# Tests override ocfs2:timeouts and drbd:split_brain_victim on the command line.
storage:
  backend: drbd_ocfs2
  mount_point: /var/vmail
  nodes:
    mx1:
      address: 10.99.0.11
      number: 1
    mx2:
      address: 10.99.0.12
      number: 2
  drbd:
    resource: r0
    disk: /dev/vdb
    shared_secret: vm-test-secret-not-for-production
    initial_primary: mx1
    sync_timeout: 300
    # the vm tier runs masterless (salt-call --local): no master to arbitrate, so both
    # sides of a cut pair write (its split-brain tests need exactly that)
    fencing: dont-care
    arbiter:
      enabled: false
  ocfs2:
    cluster: vmstore
    label: vmail
    journal_size: 4M
  shared_path:
    source: /srv/shared/vmail
