"""
The cluster's picture as drawn (docs/diagram.md), read back from its SVG: every ``<g>`` by
the stable id the builder gives it, with its classes and text. For the unit tier (the builder
fed with models recorded in the lab, tests/fixtures/diagram/) and the lab tier (the live
picture). Importable from every tier: ``tests/`` is on ``sys.path`` through tests/conftest.py.
"""

import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Drawing:
    """The drawn SVG (a path or its bytes): ``<g>`` elements by id."""

    def __init__(self, svg):
        root = ET.fromstring(svg) if isinstance(svg, bytes) else ET.parse(svg).getroot()
        self.items = {}
        for g in root.iter(f"{SVG}g"):
            texts = " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
            self.items[g.get("id")] = (set((g.get("class") or "").split()), texts)

    def has(self, gid):
        return gid in self.items

    def classes(self, gid):
        assert gid in self.items, f"{gid} not drawn; drawn: {sorted(self.items)}"
        return self.items[gid][0]

    def text(self, gid):
        self.classes(gid)
        return self.items[gid][1]

    def answers(self, name):
        """The addresses drawn as DNS answers for ``name``."""
        prefix = f"answer-{name}-"
        return {gid[len(prefix) :] for gid in self.items if gid.startswith(prefix)}

    def holders(self, ip):
        """The nodes drawn as holding service IP ``ip``."""
        prefix = f"hold-{ip}-"
        return {gid[len(prefix) :] for gid in self.items if gid.startswith(prefix)}
