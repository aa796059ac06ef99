# graphs: mailgraph's RRDs of the SMTP traffic on each mail node.
include:
  - graphs.service
