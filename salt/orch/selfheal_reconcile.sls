# orch.selfheal_reconcile: converge DNS with the real state of every mail node (what the
# master engine reactor/engines/mailcluster_selfheal.py runs every 10 s). Safe to run any time.
#   salt-run state.orchestrate orch.selfheal_reconcile

selfheal-orch-reconcile-runner-salt-runner:
  salt.runner:
    - name: mailcluster_failover.reconcile
