"""The options kitchen-salt 0.7.2's salt_solo provisioner knows, and the checks of a config.

Read from its source (lib/kitchen/provisioner/salt_solo.rb: DEFAULT_CONFIG, and every
``config[:x]`` its code and templates read) and Test Kitchen's provisioner base. An option not
in here is ignored by Ruby without a word; here it is an error naming it, so a misspelling
never passes as a setting.
"""

from __future__ import annotations

import difflib
import re

from kitchen_config import KitchenConfigError

# salt_solo's DEFAULT_CONFIG, with the defaults that shape what it writes
DEFAULTS = {
    "cache_commands": [],
    "dependencies": [],
    "dry_run": False,
    "is_file_root": False,
    "local_salt_root": None,
    "pillar_env": None,
    "pillars_from_directories": [],
    "require_chef": True,
    "salt_config": "/etc/salt",
    "salt_copy_filter": [],
    "salt_env": "base",
    "salt_file_root": "/srv/salt",
    "salt_force_color": False,
    "salt_enable_color": True,
    "salt_install": "bootstrap",
    "salt_minion_config_dropin_files": [],
    "salt_minion_config": "/etc/salt/minion",
    "salt_minion_extra_config": {},
    "salt_minion_id": None,
    "salt_pillar_root": "/srv/pillar",
    "salt_spm_root": "/srv/spm",
    "salt_state_top": "/srv/salt/top.sls",
    "salt_version": "latest",
    "state_collection": False,
    "state_top_from_file": False,
    "state_top": {},
    "vendor_path": None,
    "vendor_repo": [],
    "run_salt_call": True,
    # Test Kitchen's provisioner base
    "root_path": "/tmp/kitchen",
    "sudo": True,
    "sudo_command": "sudo -E",
}
# the rest of DEFAULT_CONFIG: install sources this project does not use (salt_install none)
INSTALL_ONLY = {
    "bootstrap_url", "chef_bootstrap_url", "gpg_home", "gpg_key",
    "install_after_init_environment", "omnibus_cachier", "pip_bin", "pip_editable",
    "pip_extra_index_url", "pip_index_url", "pip_pkg", "remote_states",
    "salt_apt_repo_key", "salt_apt_repo", "salt_bootstrap_options", "salt_bootstrap_url",
    "salt_ppa", "salt_yum_repo_key", "salt_yum_repo_latest", "salt_yum_repo",
    "salt_yum_rpm_key",
}  # fmt: skip
# read by the code without a default
READ_ONLY = {
    "collection_name", "data_path", "formula", "grains", "init_environment", "log_level",
    "pillars", "pillars_from_files", "pillars-from-files", "pre_salt_command",
    "prepare_salt_environment", "salt_call_command", "salt_minion_config_template",
}  # fmt: skip
# Test Kitchen's provisioner base and plugin loader
KITCHEN_BASE = {
    "name", "command_prefix", "http_proxy", "https_proxy", "ftp_proxy", "retry_on_exit_code",
    "max_retries", "wait_for_retry", "downloads", "uploads",
}  # fmt: skip
KNOWN = set(DEFAULTS) | INSTALL_ONLY | READ_ONLY | KITCHEN_BASE
# named so in docs/provisioner_options.md, read under another name by the code
DOCUMENTED_ONLY = {
    "salt_minion_config_include_files": "salt_minion_config_dropin_files",
    "salt_bootstrap_script": "salt_bootstrap_url",
}
SALT_INSTALLS = {"bootstrap", "pip", "apt", "distrib", "ppa", "yum", "none"}


def settings(where: str, config: dict) -> dict:
    """The provisioner's configuration with salt_solo's defaults, checked."""
    if config.get("name") != "salt_solo":
        raise KitchenConfigError(f"{where}: provisioner name must be salt_solo")
    for key in config:
        if key in DOCUMENTED_ONLY:
            raise KitchenConfigError(
                f"{where}: salt_solo option '{key}' is documented but never read by "
                f"kitchen-salt 0.7.2: the code reads '{DOCUMENTED_ONLY[key]}'"
            )
        if key not in KNOWN:
            near = difflib.get_close_matches(key, sorted(KNOWN), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise KitchenConfigError(f"{where}: unknown salt_solo option '{key}'{hint}")
    cfg = {**DEFAULTS, **config}
    version = cfg["salt_version"]
    if not isinstance(version, str):
        raise KitchenConfigError(
            f"{where}: salt_version must be a string ('3008.4'): YAML read {version!r}"
        )
    if version != "latest" and not re.fullmatch(r"\d{4}\.\d+(\.\d+)?", version):
        raise KitchenConfigError(
            f"{where}: salt_version '{version}': 'latest' or an exact release such as 3008.4 "
            "(a bare major version makes kitchen-salt's install check exit 2)"
        )
    if cfg["salt_install"] not in SALT_INSTALLS:
        raise KitchenConfigError(
            f"{where}: salt_install '{cfg['salt_install']}' is not one of "
            f"{', '.join(sorted(SALT_INSTALLS))}"
        )
    if cfg["require_chef"]:
        raise KitchenConfigError(
            f"{where}: require_chef must be false (salt_solo would download Chef for a "
            "busser verifier this file does not use)"
        )
    if cfg["state_top_from_file"] and cfg["local_salt_root"] is None:
        raise KitchenConfigError(
            f"{where}: state_top_from_file needs local_salt_root (kitchen-salt crashes without)"
        )
    return cfg
