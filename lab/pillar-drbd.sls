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

# Timing for guests under TCG (no KVM here): a trivial minion job takes seconds there and a
# highstate tens of minutes, so the lab's quick values (pillar/topology.sls) would call a busy
# guest dead. These are closer to a real site's defaults, with room for TCG.
mailcluster:
  selfheal:
    # one reconcile a minute, not every 10 s: each one pings both guests and has a silent
    # one verified (another ping, the peer's witness); every 10 s, while the guests booted,
    # those jobs queued faster than a guest ran them and no minion answered for 20 minutes
    reconcile_interval: 60
    # the master's pings and the peer's heartbeat witness get time to answer
    verify_timeout: 15.0
    reconcile_verify_timeout: 30.0
    witness_wait: 15.0
    health_wait: 120.0
    # a look at a returning node every 15 s, not every 0.3 s: each look is a job on it and
    # one on its peer, and the peer (load 17) answered them 85 s late
    health_interval: 15.0
    # the minion watchdog touches less often and waits far longer before a restart (a
    # restart mid-highstate would kill the highstate)
    watchdog:
      touch_interval: 60
      deaf_after: 900
      check_interval: 30
      backoff: 1800
    # the beacon checks heartbeat and DRBD every 5 s, not every second (each check starts
    # cl_status and drbdsetup, which costs a guest most of a second)
    beacon:
      interval: 5
ha:
  keepalive: 1
  warntime: 4
  deadtime: 8
  initdead: 30
