"""Call many Salt execution functions in one process inside a guest (masterless).

Each ``salt-call`` costs 7-15 s of Python start-up under TCG; the module tests make dozens of
calls, so they send them in one batch. Reads a JSON list on stdin, each item
``[fun, [args...], {kwargs}]`` or ``["__wait__", fun, [args], {kwargs}, want, timeout]``
(repeat the call until it returns ``want``), and prints a JSON list of
``{"fun": ..., "ok": bool, "ret": ..., "error": "..."}``. Usage (in the guest):
``/opt/mc-venv/bin/python guest_call.py < calls.json``.
"""

import json
import sys
import time

import salt.client


def main() -> None:
    calls = json.load(sys.stdin)
    caller = salt.client.Caller(c_path="/etc/salt/minion")
    out = []
    for item in calls:
        t0 = time.monotonic()
        if item[0] == "__wait__":
            _, fun, args, kwargs, want, timeout = item
            deadline = time.monotonic() + timeout
            while True:
                try:
                    ret, ok, err = caller.cmd(fun, *args, **kwargs), True, ""
                except Exception as exc:
                    ret, ok, err = None, False, f"{type(exc).__name__}: {exc}"
                if ret == want or time.monotonic() > deadline:
                    break
                time.sleep(1)
        else:
            fun, args, kwargs = (
                item[0],
                item[1] if len(item) > 1 else [],
                (item[2] if len(item) > 2 else {}),
            )
            try:
                ret, ok, err = caller.cmd(fun, *args, **kwargs), True, ""
            except Exception as exc:
                ret, ok, err = None, False, f"{type(exc).__name__}: {exc}"
        out.append(
            {
                "fun": fun,
                "ok": ok,
                "ret": ret,
                "error": err,
                "seconds": round(time.monotonic() - t0, 2),
            }
        )
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
