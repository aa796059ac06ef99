"""Role graphs: mailgraph reading the mail log into its RRDs."""

from checks import assert_packages, assert_service


def check_mailgraph(host):
    assert_packages(host, "mailgraph", "rrdtool")
    assert_service(host, "mailgraph")
