# First state of every highstate (top.sls puts it first): stops the run when the pillar is
# invalid, naming the bad keys, before anything changes.
common-pillar-mailcluster-pillar-valid:
  mailcluster.pillar_valid:
    - name: mailcluster
    - order: 1
    - failhard: true
