"""Time of each SMTP step, one message after the other (no concurrency): where a path spends
its time. Runs inside a lab node with Debian's python3 (standard library only), fed on stdin
by bench/mail_bench.py:  python3 - HOST PORT RCPT COUNT SUBJECT  -> one JSON line, ms median/max.

DATA here is the end-of-data dialogue: what smtpd does before its 250 (the milter's end of
message and the cleanup's queue file); RCPT covers the recipient maps and policy services.
"""

import json
import smtplib
import statistics
import sys
import time

host, port, rcpt, count, subject = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    int(sys.argv[4]),
    sys.argv[5],
)
steps = {k: [] for k in ("connect", "ehlo", "mail", "rcpt", "data")}
body = (
    "From: bench@outside.invalid\r\nTo: <%s>\r\nSubject: %s\r\n"
    "Message-ID: <phase-%d-%f@source.invalid>\r\n\r\nstep timing\r\n"
)
for i in range(count):
    t = [time.monotonic()]
    smtp = smtplib.SMTP(host, port, timeout=30)
    t.append(time.monotonic())
    smtp.ehlo("source.invalid")
    t.append(time.monotonic())
    smtp.mail("bench@outside.invalid")
    t.append(time.monotonic())
    smtp.rcpt(rcpt)
    t.append(time.monotonic())
    smtp.data((body % (rcpt, subject, i, time.time())).encode())
    t.append(time.monotonic())
    smtp.quit()
    for key, a, b in zip(steps, t[:-1], t[1:], strict=True):
        steps[key].append(b - a)
print(
    json.dumps(
        {
            k: [round(statistics.median(v) * 1000, 2), round(max(v) * 1000, 2)]
            for k, v in steps.items()
        }
    )
)
