"""mailcluster_bind: the zones a named.conf.local declares, parsed from the dns role's own
template rendered for a primary and for a secondary (issue 14.2: which zones a secondary asks
its primary for after a configuration change)."""

import jinja2
import pytest
from mc_unit_helpers import REPO, load_loader_module

bind = load_loader_module("modules", "mailcluster_bind")
TEMPLATE = (REPO / "salt/dns/files/named.conf.local.jinja").read_text()
ZONES = ["cluster.test", "example.test", "sales.test"]


def _conf(role, primary_ip="10.88.0.21", zones=ZONES):
    mapdata = {
        "key_file": "/etc/bind/mailcluster.key",
        "key_name": "mailcluster",
        "update_types": ["A", "TXT"],
        "primary_dir": "/var/lib/bind/mailcluster",
        "secondary_dir": "/var/cache/bind/mailcluster",
        "acme": {},
        "cluster": {
            "role": role,
            "zones": zones,
            "primary_ip": primary_ip,
            "secondary_ips": ["10.88.0.22"],
        },
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(mapdata=mapdata)


def test_parse_reads_each_zones_type_and_primaries():
    assert bind.parse(_conf("primary")) == {z: {"type": "primary", "primaries": []} for z in ZONES}
    assert bind.parse(_conf("secondary")) == {
        z: {"type": "secondary", "primaries": ["10.88.0.21"]} for z in ZONES
    }


@pytest.mark.parametrize(
    ("now", "want"),
    [
        (lambda: _conf("secondary"), []),  # a domain added: no zone asked for again
        (lambda: _conf("primary"), ZONES),  # turned back from acting primary: every zone
        (lambda: _conf("secondary", "10.88.0.23"), ZONES),  # another primary
        (
            lambda: _conf("secondary", zones=ZONES[:1]) + _conf("primary", zones=ZONES[1:2]),
            ZONES[1:2],
        ),  # one zone kept, one turned back
        (lambda: None, []),  # no file yet: every zone is new
    ],
)
def test_to_refresh_names_only_the_zones_that_change_kind_or_primary(tmp_path, now, want):
    path = tmp_path / "named.conf.local"
    text = now()
    if text is not None:
        path.write_text(text)
    assert bind.to_refresh([*ZONES, "new.test"], "10.88.0.21", str(path)) == want
