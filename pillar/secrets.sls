# Secrets of the lab cluster. LAB VALUES ONLY: replace every value for a real site (and keep
# this file out of the repository there, e.g. in a separate pillar root or an encrypted renderer).
# Keys are documented in pillar.example.
mailcluster:
  secrets:
    db:
      replication: lab-repl-Tf8Qznsjh8qj
      postfix: lab-postfix-c0d514f566
      dovecot: lab-dovecot-21e02c754c
      postfixadmin: lab-pfa-d317a9b0e1
      roundcube: lab-rc-4b7f20c9d2
    heartbeat:
      authkey: lab-hb-9e1c4f0a77d2b3c8
    tsig:
      algorithm: hmac-sha256
      secret: U5JZ1fz8cm8KFWUuBxx6b/wsocmTPfpckWe0JSnrvsc=
    roundcube:
      des_key: lab-rc-deskey-0123456789
    postfixadmin:
      setup_password: lab-setup-pw-8c1d
      admin_password: lab-admin-pw-5e2a
    mailboxes:
      alice@example.test: alice-lab-pw
      bob@example.test: bob-lab-pw
      carol@example.test: carol-lab-pw
      dave@sales.test: dave-lab-pw
    # the cluster CA (self-signed, made for the lab); nodes sign their certificates with it
    ca:
      cert: |
        -----BEGIN CERTIFICATE-----
        MIIDXzCCAkegAwIBAgIUMzgelTTvxKaMyVBB70XBD8TvKXwwDQYJKoZIhvcNAQEL
        BQAwNzEYMBYGA1UECgwPbWFpbGNsdXN0ZXIgbGFiMRswGQYDVQQDDBJtYWlsY2x1
        c3RlciBsYWIgQ0EwHhcNMjYxMTMwMDEzMzI0WhcNMzYxMTI3MDEzMzI0WjA3MRgw
        FgYDVQQKDA9tYWlsY2x1c3RlciBsYWIxGzAZBgNVBAMMEm1haWxjbHVzdGVyIGxh
        YiBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALJAmt2wSfvMzjRL
        c1m3nM2ee02IYqjdNO9LlATlEtcyzcz4dX2RKjGd3wdX990PluWLqCPooixuX8QW
        SPekJGj5crelipakfk55hTq8Rs2NzHDnNv/tyGVcPfaNUrHA2OMZscEDTd49t7Y8
        KiiUTAI3uNEP9q2zL5oMfOyCRejCKEw5R+POnBZtWS5XRazlvKBQQmKL9wOr41O7
        ODeoXTBZQ5Ib63I1eieF1SLF4VdCnSZgu6slJXxD37j9BqE2UsKdQ1NGvexSEBwq
        sCZ44iNfZC29dMTdlTvtEAoamBAXY7+JClv413+KIlRz+AQ71EcP0CFP7EMoL61E
        6pYuKcMCAwEAAaNjMGEwHQYDVR0OBBYEFLCtGQEsPmjoKuQRF867lgSN4MZ9MB8G
        A1UdIwQYMBaAFLCtGQEsPmjoKuQRF867lgSN4MZ9MA8GA1UdEwEB/wQFMAMBAf8w
        DgYDVR0PAQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQANdCx2fboMbEp6lb++
        LCsm+5glch04bfDLJZ3tvyi0/DKgVINyJXo9PGVU5io6ijQH+3qUBFqYT6PF7OJX
        jnx9klSrXwWlGd1T/y0sww3EA0veOG2uoeBUe0/8OoqnCLAZPJm+jZaJgNAuipjv
        l+I+PZlXWhIA4mAtz/HSp9vIBd7GROnSn2oTJyFdxYDBDgMOdU6PV+Rext6EimE/
        8auz+xwkd+Xc6yfmsrVBFU5ox7HJFDXvf8KUYkYTMYO/PrDhv+MpQgW0/imsROnD
        eGT6zH1wDgmkaairaIDfofe9GOwFp+NkgqNcaONc7Y5nC852UyKZaVp6e+AKOtEg
        mIs3
        -----END CERTIFICATE-----
      key: |
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCyQJrdsEn7zM40
        S3NZt5zNnntNiGKo3TTvS5QE5RLXMs3M+HV9kSoxnd8HV/fdD5bli6gj6KIsbl/E
        Fkj3pCRo+XK3pYqWpH5OeYU6vEbNjcxw5zb/7chlXD32jVKxwNjjGbHBA03ePbe2
        PCoolEwCN7jRD/atsy+aDHzsgkXowihMOUfjzpwWbVkuV0Ws5bygUEJii/cDq+NT
        uzg3qF0wWUOSG+tyNXonhdUixeFXQp0mYLurJSV8Q9+4/QahNlLCnUNTRr3sUhAc
        KrAmeOIjX2QtvXTE3ZU77RAKGpgQF2O/iQpb+Nd/iiJUc/gEO9RHD9AhT+xDKC+t
        ROqWLinDAgMBAAECggEANo58d86djkJceHgBWZvPk8VmUtAj9jAiI/17U9Yy4oer
        ookHGMQF6IK7wNklRVUgp6gLcdYhUL0FdZQmiBkGhdSXTmsN1FaLTAR4iQYYG5DD
        WmkCFenWtGM7mcseXMY7+6IhHAShYBx+rnmSo7Hj46ffWqlqpDZcIuegkpi6wear
        7WM+4m8DPXs3CuU0979qbwMikkqNUCKfDvtlUijTNKr7EBGIEcUZTJ7FZ2Q/ap9x
        vet9mie7pL06JllVMse1dqqltYCCALPgxmY897u7lnMBmlHgPncaT1u3YlIjBVKf
        2MW5n0edd8aul65FJk9cuaAdt2s2Ufw+7uGlDQgrOQKBgQDlMr1MQUCJ5HGmMzVg
        g4GmxCpDjE/BwvtaOjQVKztq08gs477V179r+DGM8nPN/Qza0g1305l8yz8OpIyU
        bklK56nAb0zgJ8vHZzX1fAfDboQGLrzWgdJdgbDmfg1Gy6jIAGQw1gsQk9vFSa6p
        ut4fwH+0JjGRgdkzWyQnqU1huQKBgQDHGMEvX1+jZW4aeNkPc4zIgZ821yPHaIxZ
        1PRjS4xBWY8LKyY/cSIsAIcSGthxhFqmvP0q8k+bVfCOsZ/fHthTly4WT2pyGwGD
        pdAaHJ05QCDaVQ4TXIUizbeF7d8JIHitDDrDuXYhVtJhocsLd3OumpozQNKjDZi3
        c6rSjQpVWwKBgQCD1AZbWODFL1dLEAMwixNEl2nzxj2NpheqkvWoA2C+lid54li+
        aMSaVnwxpLaFEXqWVeEXPeb3h3OyeWS+bxzK76qMm7fs6hbkj3HSy88vUl6vq6xD
        +RHFZLYaLQB36uYee1MlX8endlQfCr1itK/UNYV+WcWC+tuyFUcbZN60SQKBgCoE
        gGjGAQIT2uu9S1nmcfSy3m4Nc2CXIN+ogLcf74avJvAdeCH1d1e/+MGKZtl2LEd6
        JRfWMZS/y1fiBrJo6RCjHDfbJMTWDDjDWqrYFRpK/WP2hVTytqpErhGWxPZBIxaq
        ORCraFHa5+Vw5tARsplLyXU9nfaJXQyCXa+30lF3AoGAO2xCedOGzDF81gCI0Lpw
        kgjahuU+eTucPyMRDfOaNlRdXvFe9Ae3zUTCdyB2eKOx3xKHhVNrgQbrkiOmtqk2
        QWRy9AMp22mwnxBc0H5JJEJmj0A4w1vwWG0CXOg2NvT7HXy0iYG2Qfatr8DR5nMU
        j2s3KfOXk2chKTsDUXlfzpU=
        -----END PRIVATE KEY-----
