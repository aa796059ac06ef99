"""What kitchen-salt 0.7.2's salt_solo writes into its sandbox, and the commands it runs.

Reproduced from its source (lib/kitchen/provisioner/salt_solo.rb, minion.erb, spm.erb,
lib/kitchen-salt/{states,pillars,util}.rb), for the options this project's kitchen.yml uses;
``salt_solo_options.settings`` refuses the rest. The sandbox is what Test Kitchen uploads to
``root_path`` on the instance. Ruby's ``File.join`` drops a doubled ``/`` at a joint; where
salt_solo builds a path by string interpolation instead, the doubled ``/`` stays (as here).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from kitchen_config import KitchenConfigError

# the directories prepare_formula copies beside a dependency (states.rb)
FORMULA_EXTRAS = (
    "_modules",
    "_states",
    "_grains",
    "_renderers",
    "_returners",
    "_runners",
    "_utils",
)
RETCODE_VERSION = "0.17.5"


def join(*parts: str) -> str:
    """Ruby's File.join: one separator at each joint."""
    out = parts[0]
    for part in parts[1:]:
        out = out.rstrip("/") + "/" + part.lstrip("/")
    return out


def minion_config(cfg: dict) -> str:
    """minion.erb on Linux (its Windows block renders to nothing, its ``<% end %>`` line to a
    newline)."""
    root = cfg["root_path"]
    return (
        "# @markup text\n"
        "local: true\n"
        "state_top: top.sls\n"
        f"root_dir: {root}\n"
        "\n"
        "file_roots:\n"
        f" {cfg['salt_env']}:\n"
        f"   - {join(root, cfg['salt_file_root'])}\n"
        f"   - {join(root, cfg['salt_spm_root'], 'salt')}\n"
        "\n"
        "pillar_roots:\n"
        f" {cfg['pillar_env'] or cfg['salt_env']}:\n"
        f"   - {join(root, cfg['salt_pillar_root'])}\n"
        f"   - {join(root, cfg['salt_spm_root'], 'pillar')}\n"
        "\n"
        "\n"
    )


def spm_config(cfg: dict) -> str:
    root = cfg["root_path"]
    spm = join(root, cfg["salt_spm_root"])
    excludes = "".join(f"- {x}\n" for x in (".git", ".svn", ".idea", ".kitchen"))
    return (
        f"spm_build_dir: {join(root)}/build\nformula_path: {spm}/salt\n"
        f"pillar_path: {spm}/pillar\nroot_dir: {root}\nspm_build_exclude:\n{excludes}"
    )


def _sudo(cfg: dict, command: str) -> str:
    return f"{cfg['sudo_command']} {command}" if cfg["sudo"] else command


def salt_command(cfg: dict) -> str:
    """salt_solo's run_command for Linux and a version past RETCODE_VERSION."""
    root = cfg["root_path"]
    cmd = _sudo(cfg, f"chmod +x {root}/*.sh;") + _sudo(cfg, f"{root}/dependencies.sh;")
    if cfg.get("pre_salt_command"):
        cmd += f"{cfg['pre_salt_command']} && "
    cmd += _sudo(cfg, cfg.get("salt_call_command") or "salt-call")
    state_output = cfg["salt_minion_extra_config"].get("state_output", "changes")
    cmd += f" --state-output={state_output}"
    cmd += f" --config-dir={join(root, cfg['salt_config'])}"
    cmd += " state.highstate"
    if cfg.get("log_level"):
        cmd += f" --log-level={cfg['log_level']}"
    if cfg["salt_minion_id"]:
        cmd += f" --id={cfg['salt_minion_id']}"
    if cfg["dry_run"]:
        cmd += f" test={cfg['dry_run']}"
    if cfg["salt_force_color"]:
        cmd += " --force-color"
    if not cfg["salt_enable_color"]:
        cmd += " --no-color"
    version = cfg["salt_version"]
    if version <= RETCODE_VERSION and version != "latest":
        raise KitchenConfigError(f"salt_version {version}: older than this reproduction knows")
    return cmd + " --retcode-passthrough"


def init_command(cfg: dict) -> str:
    return f"mkdir -p '{cfg['root_path']}';"


def prepare_command(cfg: dict) -> str:
    # string interpolation in salt_solo.rb: the doubled slash is theirs
    tree = f"{cfg['root_path']}/{cfg['salt_file_root']}"
    return _sudo(cfg, "chown") + f' -R "${{SUDO_USER:-$USER}}" "{tree}"'


def dependencies_script(cfg: dict) -> str:
    """What dependencies.sh does for this project's dependencies (path ones only: they are
    copied into the sandbox on the workstation, so the script only makes the roots). Not
    kitchen-salt's text: its formula-fetch and repository-setup helpers are not shipped."""
    root = join(cfg["root_path"], cfg["salt_file_root"])
    return (
        "#!/bin/sh\nset -e\n"
        f'SALT_ROOT="{root}"\nmkdir -p "$SALT_ROOT" /usr/share/salt-formulas\n'
        'echo "Content of $SALT_ROOT :"; ls -la "$SALT_ROOT"\n'
    )


class Sandbox:
    """Writes the sandbox for one instance's provisioner configuration ``cfg`` (checked by
    salt_solo_options.settings), from the project at ``project``, under ``path``."""

    def __init__(self, cfg: dict, project: Path, path: Path, where: str):
        self.cfg, self.project, self.path, self.where = cfg, project, path, where

    def at(self, remote: str) -> Path:
        return self.path / remote.lstrip("/")

    def copy_tree(self, source: Path, target: Path) -> None:
        """util.rb's cp_r_with_filter: a filtered name (basename) is left out, a file is
        copied to ``target`` itself; the target's parent must exist (FileUtils.copy)."""
        source = self.project / source
        if not source.exists():
            raise KitchenConfigError(f"{self.where}: {source.relative_to(self.project)} missing")
        skip = set(self.cfg["salt_copy_filter"])
        if source.is_file():
            if not target.parent.is_dir():
                raise KitchenConfigError(
                    f"{self.where}: kitchen-salt cannot copy {source.name} to {target}: no "
                    "such directory yet (list a directory before the files that go into it)"
                )
            shutil.copy(source, target)
            return
        shutil.copytree(
            source,
            target,
            dirs_exist_ok=True,
            ignore=lambda _dir, names: [n for n in names if n in skip],
            symlinks=True,
        )

    def write(self) -> None:
        cfg = self.cfg
        self.path.mkdir(parents=True, exist_ok=True)
        minion = self.at(cfg["salt_minion_config"])
        minion.parent.mkdir(parents=True, exist_ok=True)
        minion.write_text(minion_config(cfg))
        if cfg["salt_minion_extra_config"]:
            dropin = self.at("etc/salt/minion.d/99-minion.conf")
            dropin.parent.mkdir(parents=True, exist_ok=True)
            dropin.write_text(yaml_dump(cfg["salt_minion_extra_config"]))
        self.pillars()
        if cfg.get("grains") is not None:
            self.at(join(cfg["salt_config"], "grains")).write_text(yaml_dump(cfg["grains"]))
        self.states()
        self.state_top()
        self.dependencies()
        self.check_top()

    def check_top(self) -> None:
        """Every SLS the top file names is in the state tree: salt-call would otherwise
        say "No matching sls found" for it only on the instance, after the upload."""
        file_root = self.at(self.cfg["salt_file_root"])
        top = yaml.safe_load(self.at(self.cfg["salt_state_top"]).read_text()) or {}
        for env, targets in top.items():
            for target, items in (targets or {}).items():
                for sls in (i for i in items if isinstance(i, str)):
                    base = file_root / sls.replace(".", "/")
                    if not (base.with_suffix(".sls").is_file() or (base / "init.sls").is_file()):
                        raise KitchenConfigError(
                            f"{self.where}: the top file names SLS '{sls}' ({env}, {target!r}), "
                            "which is not in the state tree"
                        )

    def pillars(self) -> None:
        cfg = self.cfg
        pillar_root = self.at(cfg["salt_pillar_root"])
        for entry in cfg["pillars_from_directories"]:
            if isinstance(entry, dict):
                self.copy_tree(Path(entry["source"]), self.at(entry["dest"]))
            else:
                self.copy_tree(Path(entry), pillar_root)
        files = cfg.get("pillars_from_files")
        if cfg.get("pillars") is None and files is None:
            if cfg["local_salt_root"] is not None:
                self.copy_tree(Path(cfg["local_salt_root"]) / "pillar", pillar_root)
            return
        for key, contents in (cfg.get("pillars") or {}).items():
            target = pillar_root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml_dump(contents))
        for key, source in (files or {}).items():
            target = pillar_root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            self.copy_tree(Path(source), target)

    def states(self) -> None:
        cfg = self.cfg
        if cfg["local_salt_root"] is None:
            raise KitchenConfigError(f"{self.where}: this reproduction needs local_salt_root")
        target = self.at(cfg["salt_file_root"])
        target.mkdir(parents=True, exist_ok=True)
        self.copy_tree(Path(cfg["local_salt_root"]) / "salt", target)

    def state_top(self) -> None:
        cfg = self.cfg
        if cfg["state_top_from_file"]:
            text = (self.project / cfg["local_salt_root"] / "salt/top.sls").read_text()
        else:
            text = yaml_dump(cfg["state_top"])
        self.at(cfg["salt_state_top"]).write_text(text)

    def dependencies(self) -> None:
        cfg = self.cfg
        file_root = self.at(cfg["salt_file_root"])
        for dep in cfg["dependencies"]:
            if "path" not in dep:
                raise KitchenConfigError(f"{self.where}: dependency {dep}: only path ones here")
            path = Path(dep["path"])
            (file_root / dep["name"]).mkdir(parents=True, exist_ok=True)
            self.copy_tree(path / dep["name"], file_root / dep["name"])
            for extra in FORMULA_EXTRAS:
                if (self.project / path / extra).is_dir():
                    self.copy_tree(path / extra, file_root / extra)
        spm = self.at(join(cfg["salt_config"], "spm"))
        spm.write_text(spm_config(cfg))
        script = self.at("dependencies.sh")
        script.write_text(dependencies_script(cfg))


def yaml_dump(data) -> str:
    """What Ruby's ``to_yaml`` (Psych) writes, for the types a kitchen.yml hash holds here:
    mappings, sequences (not indented under their key), strings, integers, booleans."""
    return "---\n" + "".join(_psych(data, 0))


# Psych::Visitors::YAMLTree#visit_String: a string opening with a non-word character and
# holding no '"' is double-quoted; one that would read back as another type, single-quoted
_NOT_A_STRING = re.compile(
    r"[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|true|false|yes|no|on|off|null|~", re.I
)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise KitchenConfigError(f"salt_solo reproduction: cannot write {value!r} as Ruby would")
    if value in ("", "y", "n") or re.match(r'^[^\w][^"]*$', value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _NOT_A_STRING.fullmatch(value):
        return f"'{value}'"
    return value


def _psych(data, indent: int):
    pad = " " * indent
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict) and value:
                yield f"{pad}{_scalar(key)}:\n"
                yield from _psych(value, indent + 2)
            elif isinstance(value, list) and value:
                yield f"{pad}{_scalar(key)}:\n"
                yield from _psych(value, indent)
            else:
                yield f"{pad}{_scalar(key)}: {_scalar(value)}\n"
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict | list) and item:
                lines = "".join(_psych(item, indent + 2))
                yield f"{pad}- {lines[indent + 2 :]}"
            else:
                yield f"{pad}- {_scalar(item)}\n"
    else:
        yield f"{pad}{_scalar(data)}\n"
