{%- from "common/map.jinja" import mapdata as db with context %}
{%- set pkg = db.schema.package %}

include:
  - db.service

# dbconfig-common answers, set just before the package is installed (never re-applied)
db-schema-postfixadmin-debconf-set:
  debconf.set:
    - name: {{ pkg }}
    - data:
        '{{ pkg }}/dbconfig-install': {type: boolean, value: true}
        '{{ pkg }}/database-type': {type: select, value: mysql}
        '{{ pkg }}/mysql/method': {type: select, value: Unix socket}
        '{{ pkg }}/db/dbname': {type: string, value: {{ db.database }}}
        '{{ pkg }}/db/app-user': {type: string, value: postfixadmin@localhost}
    - prereq:
      - pkg: db-schema-postfixadmin-pkg-installed

# the DB password answers on debconf-set-selections' stdin: debconf.set prints an answer's
# value in a test run's output ("New value: ..."), and an argument would be in the process list
db-schema-postfixadmin-passwords-cmd-run:
  cmd.run:
    - name: debconf-set-selections
    - stdin: |
        {{ pkg }} {{ pkg }}/mysql/app-pass password {{ db.cluster.postfixadmin_password }}
        {{ pkg }} {{ pkg }}/app-password-confirm password {{ db.cluster.postfixadmin_password }}
    - prereq:
      - pkg: db-schema-postfixadmin-pkg-installed

# MariaDB must run first, else dbconfig skips the database and apt still returns 0
db-schema-postfixadmin-pkg-installed:
  pkg.installed:
    - name: {{ pkg }}
    - require:
      - sls: db.service

db-schema-upgrade-cmd-run:
  cmd.run:
    - name: runuser -u www-data -- php {{ db.schema.upgrade }}
    - unless: >-
        mysql -N -e "SELECT 1 FROM {{ db.database }}.config WHERE name='version'" | grep -qx 1
    - require:
      - pkg: db-schema-postfixadmin-pkg-installed

db-schema-tables-cmd-run:
  cmd.run:
    - name: >-
        echo "Postfix Admin tables missing in {{ db.database }}" >&2; exit 1
    - unless: >-
        mysql -N -e "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema='{{ db.database }}' AND table_name IN
        ('domain','mailbox','alias','alias_domain')" | grep -qx 4
    - require:
      - cmd: db-schema-upgrade-cmd-run
