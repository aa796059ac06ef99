# Mail domains served by the lab cluster. A mailbox with `absent: true` is removed; its
# password lives in secrets.sls (mailcluster:secrets:mailboxes:<address>).
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
    sales.test:
      description: lab domain two
      mailboxes:
        - name: dave
          full_name: Dave Sales
      aliases:
        postmaster: [dave@sales.test]
