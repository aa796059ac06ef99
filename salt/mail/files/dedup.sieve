# Managed by salt (mail role, mail:dovecot:dedup): run before each user's own script.
# A message whose Message-ID was already delivered to this mailbox is discarded, and the
# user's script does not run for it (stop). Without a Message-ID the test is false.
require "duplicate";

if duplicate {
  discard;
  stop;
}
