# What makes a kitchen suite's one node a cluster of its own, masterless: its certificate
# from pillar with the CA that signed it (common.tls then needs no CA minion), no minion
# watchdog (there is no minion daemon and no master). TEST VALUES ONLY: a throw-away CA made
# for these suites (docs/kitchen.md says how to make them again); never use them for a site.
mailcluster:
  secrets:
    tls:
      kitchen:
        cert: |
          -----BEGIN CERTIFICATE-----
          MIIDqDCCApCgAwIBAgIUDOGj2si7NflQ2IQvHo7c1PtMlkcwDQYJKoZIhvcNAQEL
          BQAwNzEUMBIGA1UECgwLbWFpbGNsdXN0ZXIxHzAdBgNVBAMMFm1haWxjbHVzdGVy
          IGtpdGNoZW4gQ0EwHhcNMjYxMjAxMjAwNzAzWhcNMzYxMTI4MjAwNzAzWjAfMR0w
          GwYDVQQDDBRraXRjaGVuLmNsdXN0ZXIudGVzdDCCASIwDQYJKoZIhvcNAQEBBQAD
          ggEPADCCAQoCggEBALqvv7pbIMlbixEkk6/upgn4XepQNoFPbdrAFaJekVud09av
          NnAbrlUGaWwxF1BIaw3cu7hcAx/kHE9/TCUKB6/Sr4PHtYvixH9PF0kriPM5hLre
          RAjC0ohsL7N/BLS1ES+xMUpqRIBgFx3mQ41PPmOP/sSlVaf4DtK0LM2bfPG60XOF
          yfPgSSNP+GlTnXlI73QXnOaIJvyMejhP2kGJj5PEn8wI2zK2FnCeCwG+RH0Q+lsq
          wpF6ARMiUZVdiRAooYUJkBkFE/OJDY1hCe3C7xTnb9Cy129stQWG79X2vnsL/n0v
          pyf9pDJhbI8gBxIHKGbORPoVFVJy4PKbE08zyLECAwEAAaOBwzCBwDBBBgNVHREE
          OjA4ghRraXRjaGVuLmNsdXN0ZXIudGVzdIIHa2l0Y2hlboIRbWFpbC5jbHVzdGVy
          LnRlc3SHBApXAAowDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCBaAwHQYDVR0l
          BBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCMB0GA1UdDgQWBBSBaY9y89g4jwT8hOY7
          i/Ut1E/TKjAfBgNVHSMEGDAWgBTx4M0lA8u++O5JdZbENB5wJnMFTDANBgkqhkiG
          9w0BAQsFAAOCAQEAywQ5sSPIAMVaZq31nrB6oObsTEUzZ+hfhSkmC1w30yBQO2Gi
          zSjqpwgGoXiueYySWBqbaN4e2fiqf7q/Vp+7smo3/e44nYlB1Rf6CQHo76B5st2q
          /0RmepFRlJdrF87LypQN5HQe2vzY/FNTIo5rQQpcyf4cKff5XFDzA/XUOu9UICMv
          AvDTQKyfwobOdoGTbUkMQ3KremsGxBAvUeD3tRIoqZqi6gKcmwslM9sE7tGMgGhC
          Ew0iWVHA08dPXL/G/eJEZFb4GiIZfR12FyIUpYTVYDW/pcOrPWbzYEMRXnJ5q4tg
          nhYsHIIV/dBfdLRhSxKiGpAxNFHurE+WVX4jxw==
          -----END CERTIFICATE-----

        key: |
          -----BEGIN PRIVATE KEY-----
          MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC6r7+6WyDJW4sR
          JJOv7qYJ+F3qUDaBT23awBWiXpFbndPWrzZwG65VBmlsMRdQSGsN3Lu4XAMf5BxP
          f0wlCgev0q+Dx7WL4sR/TxdJK4jzOYS63kQIwtKIbC+zfwS0tREvsTFKakSAYBcd
          5kONTz5jj/7EpVWn+A7StCzNm3zxutFzhcnz4EkjT/hpU515SO90F5zmiCb8jHo4
          T9pBiY+TxJ/MCNsythZwngsBvkR9EPpbKsKRegETIlGVXYkQKKGFCZAZBRPziQ2N
          YQntwu8U52/QstdvbLUFhu/V9r57C/59L6cn/aQyYWyPIAcSByhmzkT6FRVScuDy
          mxNPM8ixAgMBAAECggEAAv/xdlViCBJGQGAvK60g8mPmYG4/CKIQhhVpk5UY7q5b
          zyU8HEjkQCis933XcyUNa/4vbwWIJaefnoBmu76hmSfrGunnMdL9l30bcZkh53n1
          tx9SBmEDtd5P1ZQgLNDZsJjp4u6lC09f97fxlHBLn0PFqH5uoKxp/TqYxgoDqTUG
          o2fjYfpwSCDVvWbRB9ns/zjdJuCWY2uN9lrg/pDR/Ehv3EuvuoH4QZXKGE1dKgc/
          RRrXUFADz/yFYdJi3j6edVDLpJu/l4lBG8deVZKnvbPcMkpv9oA6SYZV3Pn9VT/P
          iUvIQD4Tk7CX1jSDqP+gt0kKrCRVKw+lqByWRY+GxQKBgQDz3cjrjRKE75Hq7Zj8
          DboLlbbc5AJdHPC16hzK9XbX9KD4qrCCoDAfgIPhpgbOVjC/+vZIhxfr3IYkSDAo
          9MH1nh1p6HPhJKMBwanCyaNZMpNu/OOQUYpfcHpRX2wGYJaoeAE0fHxCqv4cVmNB
          Xk4AuG48qqwV9PnCpZljlGxchQKBgQDD+aTFzOL5XPBioX8WrEsAhJuw2+nb8RWw
          B2qK3S99zPDuueV/ZnRbZ3N5x8hdZw3wRIFvsSCuFGTx9qvXHG/2CremjB59WWEE
          bx9QzFPv0tOSbN3c1pH7X3UYqhLMOOQzAj9kdo1wFyNATrFWyVl8N/H1/iynl8eq
          lcuGU7HZPQKBgE9WIwyG27SF4Bnm7HNr38/vCAu63g3+4Uy9elqJGv3M5yWfGkeU
          57MH81/QzLwKDFgYxFD6Kk0gdD+PgKOCZSuMIhOXfUOM0L88iwcE5HCbZJ2iBkKo
          VHUSOakJezJj7/+k8vdpXF+wE3WSoT3d+VCAr9RqzgtipHKvv0RHQC2lAoGAYPdl
          4wUUjUPCIVs9Ec/gMHpsup6lYNEx5O5Wdi0o8Xr0/3n1pwrfqdZPGcOTTTvPdsG+
          tbATtm6a3+ooboBAmaIF6p9L+sO9sD73ZLglE/Xh/4JkaH+2rYU24CROtsOzjdWf
          3iqWow6fv5LwRjvMTh00WH4SRD5iafJCSM2ioxUCgYAIW/kh4+BfDjgWxouoU83l
          hCCc2lAF14gC8So9FldWrjkes18LnVYsSrUSIULEJ2MMZiXfVaN/tNA8Ot/V6qLG
          MtERPL0IInnd5HGaf7DTdMwl/hq4BDGBAZ10qxIC5sSOBrolLWgTjN3btI+Q5ks2
          DQai4OE4jiaALo3XGOCeWg==
          -----END PRIVATE KEY-----

        ca: |
          -----BEGIN CERTIFICATE-----
          MIIDYjCCAkqgAwIBAgIUQ9UE/HC8NwDCA+CP0wyohz4FBPQwDQYJKoZIhvcNAQEL
          BQAwNzEUMBIGA1UECgwLbWFpbGNsdXN0ZXIxHzAdBgNVBAMMFm1haWxjbHVzdGVy
          IGtpdGNoZW4gQ0EwHhcNMjYxMjAxMjAwNzAyWhcNMzYxMTI4MjAwNzAyWjA3MRQw
          EgYDVQQKDAttYWlsY2x1c3RlcjEfMB0GA1UEAwwWbWFpbGNsdXN0ZXIga2l0Y2hl
          biBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBANBMmIxKKpNaULNc
          CKa9Q77rO4aL7P4qZEzJ19qsSUtu16Ms+VXnyhLPpEgkxseeB6lFFPBGA5NWVf4D
          ZzMY+cAzHdwmf1ltTbL1TIl2z8b4yW0gBJaFTHYennbtNbUPBjywtCnA4Tkv0oWz
          OIuPMEHiwVkp+/ef7k5UDQ+kX8ONQgv9JUjEQ2LoxctFanTlv+vqE55KfJnaDpo+
          dw4p+TPt1TOfxFBiCvXRzMDRQsvVTkuPBTnQwWrXB+s7XFos46tPKX+7qEihAdDX
          zgum4M6ye86d4vKlDMoecsVSNd3rBzBcjBzUybxkH1J5VM+Z+RJdNjI3C/6tTQwl
          PIAyAccCAwEAAaNmMGQwHQYDVR0OBBYEFPHgzSUDy7747kl1lsQ0HnAmcwVMMB8G
          A1UdIwQYMBaAFPHgzSUDy7747kl1lsQ0HnAmcwVMMBIGA1UdEwEB/wQIMAYBAf8C
          AQAwDgYDVR0PAQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQCKK6kpkVEGOeia
          b9RCyl3quj4lD6Qpo0CxD/MXLrHAmyU8Cbb1Y8C3z78pUv2e0NBUfLGV9z/7ywJX
          9hv+5wbyQDLeh7hP0PFVlCR/mk+iAMbKZjV55t2IfXApmv1+T1Guzljb0sLOtj8q
          x4dW/fLCHfCK/CXFDs9pFPRZN3NRpoVOMy/SHQEoej/SfQhxC3sU4rHL7K9VrUg8
          +aeOtQGh0h4xDuCwMcpc5Eige8RrLxHEWQ9fLrmaEYNt1h8XITYvbXp+JRPg/TMR
          URjTS0PbF0RRl5z+yUjYKsD+qqlK73DWK2z08wVwX+396vEU1udE489po1G442UM
          hncFt6G1
          -----END CERTIFICATE-----

  selfheal:
    watchdog:
      enabled: false
