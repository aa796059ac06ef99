"""The mail cluster's lab: Debian 12 nodes as systemd-nspawn containers on one machine."""
