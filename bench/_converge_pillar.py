"""The generated domains of the converge bench (issue 14.2): ``count`` domains with
``boxes`` mailboxes and one alias each, as the pillar file the bench writes into the lab's
pillar (``pillar/roles_test.sls``, listed in pillar/top.sls, not in git) and the render
profile writes into its own pillar copy.

Written as JSON (``#!json``): Salt's YAML loader is pure Python and took 73 s for 10,000
domains of 10 mailboxes, on the master, for every minion's pillar; ``json`` parses the same
in well under a second (docs/converge-scale.md: what a site with that many domains does)."""

from __future__ import annotations

import json
import pathlib

#: SHA512-CRYPT of "bench-pw": generated mailboxes need no secrets entry
HASH = (
    "$6$benchsaltbench$VH6UjSGZUqSBDol4HvgsUFEG0HNTGduZ6llmGnTt5sHnf80NAj.ZoXv8jv/7Z.J10zYaj6."
    "IGXgkhke5jM7ed0"
)
SUFFIX = "conv.test"


def names(count: int) -> list[str]:
    return [f"c{i:05d}.{SUFFIX}" for i in range(count)]


def pillar(count: int, boxes: int = 10) -> dict:
    return {
        "mailcluster": {
            "domains": {
                dom: {
                    "description": "bench",
                    "mailboxes": [{"name": f"u{j}", "password_hash": HASH} for j in range(boxes)],
                    "aliases": {"postmaster": [f"u0@{dom}"]},
                }
                for dom in names(count)
            }
        }
    }


def write(
    path: pathlib.Path,
    count: int,
    boxes: int = 10,
    extra: dict | None = None,
    mailcluster: dict | None = None,
) -> None:
    """The pillar file, with ``extra`` top-level keys and ``mailcluster`` keys besides the
    domains."""
    body = {**pillar(count, boxes), **(extra or {})}
    body["mailcluster"].update(mailcluster or {})
    tmp = path.with_suffix(".tmp")
    tmp.write_text("#!json\n" + json.dumps(body, indent=1) + "\n")
    tmp.replace(path)  # the master never renders half a file
