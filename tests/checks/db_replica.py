"""Role db_replica: a read-only MariaDB replica following the primary by GTID."""

from checks import assert_listening, assert_service


def check_replica(host):
    assert_service(host, "mariadb")
    assert_listening(host, "tcp:3306")
    proc = host.run("mariadb -N -e 'SELECT @@read_only'")
    assert proc.stdout.strip() == "1", f"read_only: {proc.stdout or proc.stderr}"
    status = host.run("mariadb -e 'SHOW SLAVE STATUS\\G'").stdout
    for field in ("Slave_IO_Running: Yes", "Slave_SQL_Running: Yes", "Using_Gtid: Slave_Pos"):
        assert field in status, f"{field} not in SHOW SLAVE STATUS:\n{status}"
