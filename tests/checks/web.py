"""Role web: lighttpd + php-fpm serving Roundcube and Postfix Admin over TLS."""

from checks import assert_listening, assert_packages, assert_service, node_ip


def check_lighttpd(host):
    assert_packages(host, "lighttpd", "php-fpm", "roundcube-core", "postfixadmin")
    assert_service(host, "lighttpd")
    assert_service(host, "php8.2-fpm")
    assert_listening(host, "tcp:80", "tcp:443")


def check_webmail_answers(host):
    ip = node_ip(host)
    proc = host.run(f"curl -sk -o /dev/null -w '%{{http_code}}' https://{ip}/")
    assert proc.stdout in ("200", "301", "302"), f"https://{ip}/ answered {proc.stdout!r}"
