"""
The web role's files for every mail domain's mail clients, as one mapping (issue 14.2): the
MTA-STS policy (``<domain>/.well-known/mta-sts.txt``), Thunderbird's autoconfig
(``<domain>/mail/config-v1.1.xml``) and Outlook's autodiscover
(``<domain>/autodiscover/autodiscover.xml``), for ``mailcluster_files`` to keep under the web
role's folder in one state (not three ``file.managed`` per domain).

The two XML files come from the Jinja templates ``salt://web/files/*.xml.jinja``, each
fetched and compiled once per call and rendered per domain as Salt's own ``template: jinja``
renders a file (sandboxed, undefined names an error, ``do``, the final newline kept), so the
files are the same as those the per-domain states wrote (tests/functional checks it).
"""

import jinja2
import jinja2.sandbox
from salt.exceptions import CommandExecutionError

__virtualname__ = "mailcluster_clients"

#: {path under the domain's folder: template}
TEMPLATES = {
    "mail/config-v1.1.xml": "salt://web/files/autoconfig.xml.jinja",
    "autodiscover/autodiscover.xml": "salt://web/files/autodiscover.xml.jinja",
}


def __virtual__():
    if "mailcluster_records.client_sites" not in __salt__:
        return (False, "mailcluster_clients needs the mailcluster_records module")
    return __virtualname__


def _compile(source, saltenv):
    text = __salt__["cp.get_file_str"](source, saltenv=saltenv)
    if not text:
        raise CommandExecutionError(f"{source}: not found on the file server ({saltenv})")
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"]
    )
    try:
        return env.from_string(text), "\n" if text.endswith("\n") else ""
    except jinja2.TemplateError as exc:
        raise CommandExecutionError(f"{source}: {exc}") from exc


def _newline(text):
    # file.managed's contents_newline: a text without its final newline gets one
    return text if text.endswith("\n") else text + "\n"


def files(sites=None, saltenv="base"):
    """
    ``{"<domain>/<path>": text}`` of every served domain's client files; ``sites`` defaults
    to ``mailcluster_records.client_sites``.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_clients.files
    """
    sites = __salt__["mailcluster_records.client_sites"]() if sites is None else sites
    compiled = {rel: _compile(src, saltenv) for rel, src in TEMPLATES.items()}
    out = {}
    for site in sites:
        dom = site["domain"]
        out[f"{dom}/.well-known/mta-sts.txt"] = _newline(site["mta_sts"]["text"])
        for rel, (template, newline) in compiled.items():
            try:
                out[f"{dom}/{rel}"] = template.render(site=site) + newline
            except jinja2.TemplateError as exc:
                raise CommandExecutionError(f"{TEMPLATES[rel]} for {dom}: {exc}") from exc
    return out
