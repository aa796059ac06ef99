# selfheal: the mail-pair side of the self-healing (issue 6, docs/selfheal.md). The master
# side (reactor, runner, schedule) is configured by reactor/master.d/selfheal.conf.
include:
  - selfheal.beacon
