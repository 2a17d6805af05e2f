#!/usr/bin/env python3
"""The public-edge attacks of issue 13 against one or more notion-sync binaries, side by
side: what each attack did to the daemon (sizes, counts, times). Loopback only.

    python3 crates/e2e-bench/edge-attacks.py target/release/notion-sync [OTHER_BINARY…]

Each binary runs `serve` on a fresh database with a Notion URL that answers nothing (the
webhook edge does not call Notion). Prints one table; exits non-zero if a daemon died.
"""

import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

SECRET = "secret_edgeBenchSigningKey0123456789abcdefgh"
DS = "248104cd-477e-80af-bc30-000bd28de8f9"
PAGE = "153104cd-477e-809d-8dc4-ff2d96ae3090"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, binary, workdir, secret=None, db=None, grace=5):
        self.port = free_port()
        self.db = db or os.path.join(workdir, "m.db")
        self.config = os.path.join(workdir, f"c{self.port}.toml")
        self.log = os.path.join(workdir, f"d{self.port}.log")
        with open(self.config, "w") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:{self.port}"\nshutdown_grace_seconds = {grace}\n'
                f'[store]\nurl = "sqlite://{self.db}"\n'
                f'[notion]\napi_url = "http://127.0.0.1:9"\ndata_source_id = "{DS}"\ntimeout_seconds = 1\n'
                f'[reconcile]\non_start = false\nschedule = ""\nfull_schedule = ""\n'
                f'[log]\nformat = "json"\nlevel = "info"\n'
            )
        env = {"NOTION_TOKEN": "ntn_edgebench000000000000000000000000", "PATH": os.environ["PATH"]}
        if secret:
            env["NOTION_WEBHOOK_SECRET"] = secret
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", self.config],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return
            try:
                self.get("/healthz")
                return
            except Exception:
                time.sleep(0.05)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(self, body, headers=None):
        req = urllib.request.Request(self.url("/webhooks/notion"), data=body, method="POST")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except Exception:
            return 0

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def log_lines(self, needle):
        with open(self.log, errors="replace") as f:
            return sum(1 for l in f if needle in l)

    def term(self, timeout=60):
        t = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed"
        return code, time.time() - t


def raw(port, data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def sign(body):
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def event(n, ts):
    return json.dumps({
        "id": f"0e0e0e0e-0000-4000-8000-{n:012d}", "timestamp": ts, "type": "page.created",
        "authors": [{"id": "c7c11cca-1d73-471d-9b6e-bdef51470190", "type": "person"}],
        "attempt_number": 1, "entity": {"id": PAGE, "type": "page"},
        "data": {"parent": {"id": DS, "type": "data_source"}},
    }).encode()


def now_iso(offset_s=0):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + offset_s))


def measure(binary):
    r = {}
    with tempfile.TemporaryDirectory() as work:
        # 1. invented methods
        d = Daemon(binary, work, SECRET)
        d.get("/metrics")
        m0, rss0 = len(d.get("/metrics")[1]), d.rss_mib()
        t = time.time()
        for i in range(400):
            raw(d.port, (f"X{i}" + "M" * 60000 + " / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode())
        took = time.time() - t
        m1, rss1 = len(d.get("/metrics")[1]), d.rss_mib()
        r["1. 400 invented methods: /metrics bytes"] = f"{m0} → {m1}"
        r["1. … RSS MiB"] = f"{rss0:.1f} → {rss1:.1f} ({took:.1f} s)"
        # 7. log lines for 300 unauthenticated requests
        before = sum(d.log_lines(n) for n in ("signature rejected", "without X-Notion-Signature"))
        for i in range(300):
            d.post(event(i, now_iso()), {"x-notion-signature": "sha256=00"} if i % 2 else {})
        after = sum(d.log_lines(n) for n in ("signature rejected", "without X-Notion-Signature"))
        r["7. 300 bad/missing signatures: log lines"] = str(after - before)
        # 8. replay of a signed delivery 8 days old (retention 7 days)
        body = event(9999, now_iso(-8 * 86400))
        r["8. signed event 8 days old: status"] = str(d.post(body, {"x-notion-signature": sign(body)}))
        # 4. idle / slow connections, early 413, then SIGTERM with a half-sent body
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(15)
        t = time.time()
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        r["4. half-sent head: closed after"] = f"{time.time() - t:.1f} s" if closed else "open after 15 s"
        s.close()
        t = time.time()
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        s.settimeout(5)
        try:
            first = s.recv(64)
        except socket.timeout:
            first = b""
        r["4. Content-Length 100 MiB, no body: answer"] = (
            f"{first[:12].decode(errors='replace')} in {1000 * (time.time() - t):.0f} ms" if first else "none in 5 s")
        s.close()
        half = socket.create_connection(("127.0.0.1", d.port))
        half.sendall(b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(0.3)
        code, took = d.term()
        r["4. SIGTERM (grace 5 s) with a half-sent body: exit"] = f"{code} after {took:.1f} s"
        half.close()

    with tempfile.TemporaryDirectory() as work:
        # 2. handshake flood with the real token first, no secret configured
        d = Daemon(binary, work)
        real = "secret_theRealOneFromNotion0123456789abcdefghij"
        d.post(json.dumps({"verification_token": real}).encode())
        t = time.time()
        codes = {}
        for i in range(500):
            c = d.post(json.dumps({"verification_token": f"secret_flood{i:06d}xxxxxxxxxxxxxxxxxxxx"}).encode())
            codes[c] = codes.get(c, 0) + 1
        took = time.time() - t
        warn = d.log_lines("verification token")
        d.term()
        db = sqlite3.connect(d.db)
        rows = [t for (t,) in db.execute("SELECT token FROM verification_tokens ORDER BY received_at")]
        db.close()
        r["2. 1 real + 500 handshakes: answers"] = ", ".join(f"{k}×{v}" for k, v in sorted(codes.items())) + f" in {took:.1f} s"
        r["2. … real token still listed; tokens stored; log lines"] = f"{real in rows}; {len(rows)}; {warn}"
        # 3. restart with a secret: tokens left in the file
        d = Daemon(binary, work, SECRET)
        time.sleep(0.5)
        c = d.post(json.dumps({"verification_token": "secret_afterTheSecretWasSet0000000000"}).encode())
        d.term()
        db = sqlite3.connect(d.db)
        n = db.execute("SELECT COUNT(*) FROM verification_tokens").fetchone()[0]
        db.close()
        with open(d.db, "rb") as f:
            in_bytes = real.encode() in f.read()
        r["3. after a restart with the secret: tokens in the DB; real token's bytes in the file; new handshake"] = f"{n}; {in_bytes}; {c}"
        # 5. a second serve through a symlink
        first = Daemon(binary, work, SECRET)
        link = os.path.join(work, "link.db")
        os.symlink(d.db, link)
        second = Daemon(binary, work, SECRET, db=link)
        time.sleep(1)
        started = second.proc.poll() is None
        r["5. second serve through a symlink"] = "started (two writers)" if started else f"refused (exit {second.proc.returncode})"
        if started:
            second.term()
        first.term()
    return r


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    results = [measure(b) for b in binaries]
    keys = list(results[0].keys())
    width = max(len(k) for k in keys)
    print(f"{'attack':<{width}}  " + "  |  ".join(binaries))
    for k in keys:
        print(f"{k:<{width}}  " + "  |  ".join(res.get(k, "-") for res in results))


if __name__ == "__main__":
    main()
