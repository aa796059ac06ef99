# graphs: mailgraph's RRDs of the SMTP traffic on each mail node, its CGI served on the node's
# own address (graphs:port, 8081); the web role proxies it as /graphs/<node>/.
include:
  - graphs.service
  - graphs.web
