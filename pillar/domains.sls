# Mail domains served by the lab cluster. A mailbox with `absent: true` is removed; its
# password lives in secrets.sls (mailcluster:secrets:mailboxes:<address>). dmarc, mta_sts,
# tls_rpt: a domain's own over pillar dns:dmarc etc. (pillar.example), over the defaults
# (DMARC p=none, MTA-STS testing for a week, reports to postmaster@<domain>).
mailcluster:
  domains:
    example.test:
      description: lab domain one
      mailboxes:
        - name: alice
          full_name: Alice Example
          quota_mb: 1024
        - name: bob
          full_name: Bob Example
        - name: carol
          absent: true
      aliases:
        postmaster: [alice@example.test]
        info: [alice@example.test, bob@example.test]
      dmarc:
        policy: quarantine
      mta_sts:
        mode: enforce
        max_age: 86400
    sales.test:
      description: lab domain two
      mailboxes:
        - name: dave
          full_name: Dave Sales
      aliases:
        postmaster: [dave@sales.test]
      # reports to another domain of the cluster: example.test's zone authorizes them
      dmarc:
        policy: reject
        sp: quarantine
        rua: [postmaster@example.test, postmaster@sales.test]
      tls_rpt:
        rua: postmaster@example.test
