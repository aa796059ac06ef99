# selfheal.clean: undo selfheal (init.sls) and the minion watchdog in reverse.
include:
  - selfheal.beacon.clean
  - selfheal.watchdog.clean
