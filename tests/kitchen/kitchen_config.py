"""kitchen.yml as Test Kitchen reads it: the instances, each with its merged configuration.

Test Kitchen (lib/kitchen/data_munger.rb) merges a plugin's configuration default < common
(top level) < platform < suite, hashes key by key and deep, anything else (lists included)
replaced whole; a plugin given as a string is ``{name: string}``; an instance is named
``<suite>-<platform>`` with ``_ , /`` turned into ``-`` and dots dropped. It reads the file
through ERB first: this project's file is plain YAML, so an ERB tag is refused here rather than
left for a Ruby that is not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

PLUGINS = ("driver", "provisioner", "transport", "verifier")


class KitchenConfigError(Exception):
    """kitchen.yml is not what Test Kitchen (or salt_solo) would accept; says where."""


@dataclass(frozen=True)
class Instance:
    name: str
    suite: str
    platform: str
    driver: dict
    provisioner: dict
    transport: dict
    verifier: dict


def deep_merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _plugin(data: dict, plugin: str, where: str) -> dict:
    value = data.get(plugin) or {}
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise KitchenConfigError(f"{where}: {plugin} must be a mapping or a name")
    return value


def instance_name(suite: str, platform: str) -> str:
    return re.sub(r"[_,/]", "-", f"{suite}-{platform}").replace(".", "")


def load(root: Path) -> dict:
    """The parsed kitchen.yml of the project at ``root``."""
    found = [n for n in ("kitchen.yml", ".kitchen.yml") if (root / n).exists()]
    if len(found) != 1:
        raise KitchenConfigError(
            f"{root}: Test Kitchen wants exactly one of kitchen.yml, .kitchen.yml (found "
            f"{', '.join(found) or 'none'})"
        )
    text = (root / found[0]).read_text()
    if "<%" in text:
        raise KitchenConfigError(f"{found[0]}: ERB tag found; this project's file is plain YAML")
    data = yaml.safe_load(text)
    for key in ("platforms", "suites"):
        if not data.get(key):
            raise KitchenConfigError(f"{found[0]}: no {key}")
    return data


def instances(data: dict) -> list[Instance]:
    found = []
    for platform in data["platforms"]:
        for suite in data["suites"]:
            pname, sname = platform["name"], suite["name"]
            if pname in suite.get("excludes", []) or (
                suite.get("includes") and pname not in suite["includes"]
            ):
                continue
            merged = {}
            for plugin in PLUGINS:
                merged[plugin] = deep_merge(
                    deep_merge(
                        _plugin(data, plugin, "top level"),
                        _plugin(platform, plugin, f"platform {pname}"),
                    ),
                    _plugin(suite, plugin, f"suite {sname}"),
                )
            found.append(Instance(instance_name(sname, pname), sname, pname, **merged))
    return found


def instance(data: dict, suite: str) -> Instance:
    """The first platform's instance of ``suite``."""
    for candidate in instances(data):
        if candidate.suite == suite:
            return candidate
    raise KitchenConfigError(f"kitchen.yml: no suite '{suite}'")
