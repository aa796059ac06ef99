# First state of every highstate (top.sls puts it first): stops the run when the pillar is
# invalid (any role's key against its schema, salt/<role>/parameters/schema.yaml, and the
# relations between keys; docs/pillar.md), naming the bad keys, before anything changes.
common-pillar-mailcluster-pillar-valid:
  mailcluster.pillar_valid:
    - name: mailcluster
    - order: 1
    - failhard: true
