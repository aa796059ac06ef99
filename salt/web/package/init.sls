{%- from "common/map.jinja" import mapdata as web with context %}
{%- set rc = web.roundcube %}

include:
  - db.primary

# lighttpd and php-fpm first: otherwise the apps pull in Apache
web-package-server-pkg-installed:
  pkg.installed:
    - pkgs: {{ web.packages | json }}

# dbconfig-common answers, set just before Roundcube is installed (never re-applied)
web-package-roundcube-debconf-set:
  debconf.set:
    - name: roundcube-core
    - data:
        'roundcube/dbconfig-install': {type: boolean, value: true}
        'roundcube/database-type': {type: select, value: mysql}
        'roundcube/mysql/method': {type: select, value: Unix socket}
        'roundcube/reconfigure-webserver': {type: multiselect, value: lighttpd}
        'roundcube/restart-webserver': {type: boolean, value: false}
        'roundcube/hosts': {type: string, value: 'tls://{{ web.cluster.mail_host }}:{{ rc.imap_port }}'}
        'roundcube/language': {type: select, value: {{ rc.language }}}
    - prereq:
      - pkg: web-package-apps-pkg-installed

# the DB password answers on debconf-set-selections' stdin: debconf.set prints an answer's
# value in a test run's output ("New value: ..."), and an argument would be in the process list
web-package-roundcube-passwords-cmd-run:
  cmd.run:
    - name: debconf-set-selections
    - stdin: |
        roundcube-core roundcube/mysql/app-pass password {{ web.cluster.db.roundcube }}
        roundcube-core roundcube/app-password-confirm password {{ web.cluster.db.roundcube }}
    - prereq:
      - pkg: web-package-apps-pkg-installed

# MariaDB must run first, else dbconfig skips the database and apt still returns 0
web-package-apps-pkg-installed:
  pkg.installed:
    - pkgs: {{ web.apps | json }}
    - require:
      - pkg: web-package-server-pkg-installed
      - sls: db.primary

web-package-roundcube-tables-cmd-run:
  cmd.run:
    - name: >-
        echo "Roundcube tables missing: dbconfig did not create the database" >&2; exit 1
    - unless: >-
        mysql -N -e "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema='roundcube' AND table_name='users'" | grep -qx 1
    - require:
      - pkg: web-package-apps-pkg-installed
