# Shared Maildir store of the mail pair (the storage role's keys: see its docs). The lab
# shares one host directory, mounted at /srv/shared in mx1 and mx2.
storage:
  backend: shared_path
