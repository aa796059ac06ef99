"""Role dns_secondary: BIND holding every zone of the cluster by transfer from the primary;
served the same way as by the primary (its checks, but the update key's)."""

from checks.dns_primary import check_bind, check_zones_served

__all__ = ["check_bind", "check_zones_served"]
