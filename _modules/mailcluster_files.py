"""
A folder's files kept equal to a mapping ``{relative path: text}`` in one state (issue 14.2):
one ``file.managed`` per domain (the web role's client set-up files, three a domain; the mail
nodes' DKIM keys) was 30,000 states on the web node at 10,000 domains, each rendered, compiled
and run at every highstate. Here a run reads each listed file once (its text, mode, owner) and
writes only those that differ; with ``clean`` the files (and emptied folders) the mapping does
not list are removed.

- :py:func:`plan`: what :py:func:`sync` would do, ``{"write": [...], "remove": [...]}``;
- :py:func:`sync`: does it (each file written to a temporary name beside it, then renamed:
  a reader never sees half a file) and returns the same lists.

Only paths go into the results, never a file's text (the DKIM keys are secrets).
"""

import grp
import os
import pwd
import tempfile

from salt.exceptions import CommandExecutionError

__virtualname__ = "mailcluster_files"


def __virtual__():
    return __virtualname__


def _ids(user, group):
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError as exc:
        raise CommandExecutionError(f"no such user or group: {exc.args[0]}") from exc
    return uid, gid


def _inside(root, rel):
    path = os.path.normpath(os.path.join(root, rel))
    if os.path.isabs(rel) or not path.startswith(root.rstrip("/") + "/"):
        raise CommandExecutionError(f"{rel}: not a path inside {root}")
    return path


def _differs(path, text, mode, uid, gid):
    try:
        st = os.lstat(path)
        with open(path, encoding="utf-8") as fh:
            have = fh.read()
    except (OSError, UnicodeDecodeError):
        return True
    return (
        have != text
        or (st.st_mode & 0o7777) != mode
        or (uid != -1 and st.st_uid != uid)
        or (gid != -1 and st.st_gid != gid)
    )


def _unlisted(root, wanted):
    """Files under ``root`` not in ``wanted`` (relative paths), and the folders left empty
    (deepest first, the order they can be removed in)."""
    keep = {os.path.dirname(w) for w in wanted}
    for folder in list(keep):
        while folder and folder not in ("", "."):
            keep.add(folder)
            folder = os.path.dirname(folder)
    files, dirs = [], []
    for top, _subdirs, names in os.walk(root, topdown=False):
        rel_top = os.path.relpath(top, root)
        for name in names:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            if rel not in wanted:
                files.append(rel)
        if rel_top != "." and rel_top not in keep:
            dirs.append(rel_top)
    return sorted(files), sorted(dirs, key=lambda d: (-d.count("/"), d))


def plan(root, files, mode="0644", user=None, group=None, clean=False):
    """
    What :py:func:`sync` would change under ``root``: ``{"write": [relative path, ...],
    "remove": [...]}`` (removals only with ``clean``). Python callers only (``files`` is a
    mapping of relative paths to texts).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_files.plan /srv/mailcluster/clients '{"a.test/x.txt": "x\\n"}'
    """
    mode = int(str(mode), 8)
    uid, gid = _ids(user, group)
    write = [
        rel
        for rel, text in sorted(files.items())
        if _differs(_inside(root, rel), text, mode, uid, gid)
    ]
    remove = []
    if clean and os.path.isdir(root):
        stray, empty = _unlisted(root, set(files))
        remove = stray + [d + "/" for d in empty]
    return {"write": write, "remove": remove}


def sync(root, files, mode="0644", user=None, group=None, clean=False, dir_mode="0755"):
    """
    Make the files under ``root`` equal ``files`` (see :py:func:`plan`); folders are made with
    ``dir_mode`` and the same owner. Returns what was done, as :py:func:`plan` says it.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_files.sync /srv/mailcluster/clients '{"a.test/x.txt": "x\\n"}'
    """
    todo = plan(root, files, mode, user, group, clean)
    fmode, dmode = int(str(mode), 8), int(str(dir_mode), 8)
    uid, gid = _ids(user, group)
    try:
        for rel in todo["write"]:
            path = _inside(root, rel)
            folder = os.path.dirname(path)
            if not os.path.isdir(folder):
                os.makedirs(folder, mode=dmode)
                os.chown(folder, uid, gid)
            fd, tmp = tempfile.mkstemp(prefix=".mc-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(files[rel])
            os.chmod(tmp, fmode)
            os.chown(tmp, uid, gid)
            os.replace(tmp, path)
        for rel in todo["remove"]:
            path = _inside(root, rel.rstrip("/"))
            if rel.endswith("/"):
                os.rmdir(path)
            else:
                os.remove(path)
    except OSError as exc:
        raise CommandExecutionError(f"{root}: {exc}") from exc
    return todo
