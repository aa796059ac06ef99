# The lab's rspamd (salt/rspamd, docs/spam-dkim.md; every key: pillar.example). No
# greylisting: the tests' mail would wait minutes for its retry. The lab has no internet:
# the modules that only ask servers out there are off (their lookups are refused at once by
# the cluster's BIND, but they still cost each message its queries).
rspamd:
  actions:
    greylist: null
  dkim:
    selector: lab2026
    domains:
      sales.test:
        selector: sales2026
