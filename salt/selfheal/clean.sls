# selfheal.clean: undo selfheal (init.sls) in reverse.
include:
  - selfheal.beacon.clean
