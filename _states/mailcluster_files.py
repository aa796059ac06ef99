"""
States keeping a folder's per-domain files in one state each (issue 14.2), over the execution
module ``mailcluster_files`` (plan, sync): one ``file.managed`` per domain was 30,000 states
on the web node at 10,000 domains, rendered and run at every highstate.

- ``client_sites``: the web role's mail client files of every domain (``mailcluster_clients``),
  and nothing else under the folder (a domain no longer served loses its files);
- ``dkim_keys``: the mail node's DKIM private keys (``mailcluster_rspamd.key_files``); only
  paths are reported, never a key.

Both report exactly the files written and removed (``test=True`` the ones that would be), and
nothing on a second run; they go through the shared skeleton (``_states/mc_flow.py``).
"""

__virtualname__ = "mailcluster_files"

NEEDS = (
    "mailcluster_files.plan",
    "mailcluster_files.sync",
    "mailcluster_clients.files",
    "mailcluster_rspamd.key_files",
)


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_files states need {', '.join(missing)} (modules not loaded)")
    if "mc_flow.converge" not in __states__:
        return (False, "the mailcluster_files states need the shared skeleton (_states/mc_flow.py)")
    return __virtualname__


def _tree(name, files, what, **opts):
    def plan():
        todo = __salt__["mailcluster_files.plan"](name, files, **opts)
        if not todo["write"] and not todo["remove"]:
            return {"result": True, "comment": f"{len(files)} {what} match pillar"}
        return {
            "changes": {k: v for k, v in todo.items() if v},
            "would": f"{len(todo['write'])} {what} would be written, "
            f"{len(todo['remove'])} path(s) removed",
        }

    def act(step):
        done = __salt__["mailcluster_files.sync"](name, files, **opts)
        # what was done, which another writer may have made less than the plan
        step["changes"] = {k: v for k, v in done.items() if v}
        step["done"] = f"{len(done['write'])} {what} written, {len(done['remove'])} path(s) removed"

    def confirm(_step):
        left = __salt__["mailcluster_files.plan"](name, files, **opts)
        return f"still differ: {left}" if left["write"] or left["remove"] else None

    return __states__["mc_flow.converge"](name, plan, act, confirm, report_unconfirmed=True)


def client_sites(name, mode="0644"):
    """
    The folder ``name`` holds every served domain's MTA-STS policy, autoconfig and
    autodiscover files (``mailcluster_clients.files``), and nothing else.

    .. code-block:: yaml

        web-clients-sites-mailcluster-files-client-sites:
          mailcluster_files.client_sites:
            - name: /var/www/mailcluster-clients
    """
    files = __salt__["mailcluster_clients.files"](saltenv=__env__)
    return _tree(name, files, "client file(s)", mode=mode, clean=True)


def dkim_keys(name, user, group, mode="0640"):
    """
    The folder ``name`` holds this mail node's DKIM private key of every signing domain
    (``mailcluster_rspamd.key_files``), owned by ``user``:``group``; other files are left.

    .. code-block:: yaml

        rspamd-config-dkim-keys-mailcluster-files-dkim-keys:
          mailcluster_files.dkim_keys:
            - name: /var/lib/rspamd/dkim
            - user: _rspamd
            - group: _rspamd
    """
    files = __salt__["mailcluster_rspamd.key_files"](name)
    return _tree(name, files, "DKIM key(s)", mode=mode, user=user, group=group)
