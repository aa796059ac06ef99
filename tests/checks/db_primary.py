"""Role db_primary: MariaDB, the primary of the cluster's GTID replication, with Postfix
Admin's database and every domain's rows from pillar."""

from checks import assert_file, assert_listening, assert_packages, assert_service


def check_mariadb(host):
    assert_packages(host, "mariadb-server", "mariadb-client")
    assert_service(host, "mariadb")
    assert_listening(host, "tcp:3306")
    assert_file(host, "/etc/mysql/mariadb.conf.d/60-mailcluster.cnf", 0o644)


def check_binlog(host):
    # replicas follow the primary by GTID: its binary log must be on
    proc = host.run("mariadb -N -e 'SELECT @@log_bin, @@read_only'")
    assert proc.stdout.split() == ["1", "0"], f"log_bin, read_only: {proc.stdout or proc.stderr}"


def check_domains_rows(host):
    proc = host.run("mariadb -N postfixadmin -e 'SELECT domain FROM domain ORDER BY domain'")
    domains = set(proc.stdout.split())
    assert {"example.test", "sales.test"} <= domains, f"domains in postfixadmin: {domains}"
