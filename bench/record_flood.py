#!/usr/bin/env python3
"""The record-flood repro of issue 27, as a measurement (run on demand, not in the test suite).

  bench/record_flood.py --edgeward target/release/edgeward \
      --guests target/guests/wasm32-wasip2/release [--clients 16] [--seconds 60]

Project `flood` holds 33 package secrets of 60,000 characters; its function reveals them all
and prints 64 KiB, so every one of its records is as costly to mask as a record can be.
`--clients` connections call it for `--seconds` (wrk). Meanwhile another project's function
(`quiet/hello`) is called twice a second, and each of its records is polled for until it is
visible through the API. Prints: how long the quiet project's records took to become visible
(median, worst), how many never did, the server's peak RSS, and the records of each project
dropped (`edgeward_records_dropped_total`).
"""
import argparse, json, os, random, re, string, subprocess, sys, tempfile, threading, time
import urllib.request


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def request(method, url, token=None, body=None, ctype="application/json"):
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeward", default="target/release/edgeward")
    ap.add_argument("--guests", default="target/guests/wasm32-wasip2/release")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=60)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    server = subprocess.Popen(
        [a.edgeward, "serve", "--data-dir", f"{tmp}/data", "--listen", "127.0.0.1:0",
         "--api-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=open(f"{tmp}/log", "w"), text=True)
    addrs = {}
    for line in server.stdout:
        m = re.match(r"listening: (\S+) (\S+)", line)
        if m:
            addrs[m.group(1)] = m.group(2)
        if line.startswith("ready"):
            break
    data, api, metrics = addrs["data-plane"], addrs["api"], addrs["metrics"]
    token = open(f"{tmp}/data/admin.token").read().strip()
    for project in ["flood", "quiet"]:
        request("POST", f"{api}/v1/projects", token, {"name": project})
    for target, guest in [("flood/reveal", "secrets"), ("quiet/hello", "hello")]:
        project, package = target.split("/")
        wasm = open(f"{a.guests}/{guest}.wasm", "rb").read()
        s, _, b = request("POST", f"{api}/v1/projects/{project}/packages/{package}/versions",
                          token, wasm, "application/wasm")
        assert s == 201, b
    rng = random.Random(7)
    names = []
    for i in range(33):
        name = f"S{i}"
        value = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(60_000))
        s, _, b = request("PUT", f"{api}/v1/projects/flood/packages/reveal/secrets/{name}",
                          token, {"value": value})
        assert s == 200, b
        names.append(name)
    flood_url = f"{data}/flood/reveal/?names={','.join(names)}&print=1"
    s, _, b = request("GET", flood_url)
    assert s == 200, b
    log(f"flooding with {a.clients} clients for {a.seconds} s")

    peak = [0]
    done = threading.Event()

    def rss():
        while not done.is_set():
            try:
                for line in open(f"/proc/{server.pid}/status"):
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)

    quiet = []  # (execution id, time answered)

    def caller():
        while not done.is_set():
            s, h, _ = request("GET", f"{data}/quiet/hello/")
            if s == 200:
                quiet.append((h["x-edgeward-execution-id"], time.monotonic()))
            time.sleep(0.5)

    seen = {}

    def watcher():
        while not done.is_set() or len(seen) < len(quiet):
            for ex, at in list(quiet):
                if ex in seen:
                    continue
                s, _, _ = request("GET", f"{api}/v1/projects/quiet/executions/{ex}", token)
                if s == 200:
                    seen[ex] = time.monotonic() - at
                elif time.monotonic() - at > 30:
                    seen[ex] = None
            time.sleep(0.05)

    threads = [threading.Thread(target=f, daemon=True) for f in (rss, caller, watcher)]
    for t in threads:
        t.start()
    wrk = subprocess.run(["wrk", "-t2", f"-c{a.clients}", f"-d{a.seconds}s", flood_url],
                         capture_output=True, text=True)
    done.set()
    threads[2].join(timeout=40)
    flood_rps = re.search(r"Requests/sec:\s+(\S+)", wrk.stdout)
    with urllib.request.urlopen(f"{metrics}/metrics") as r:
        text = r.read().decode()
    dropped = dict(re.findall(r'edgeward_records_dropped_total\{project="([^"]+)"\} (\d+)', text))
    lat = sorted(v for v in seen.values() if v is not None)
    never = sum(1 for v in seen.values() if v is None)
    server.terminate()
    server.wait(timeout=60)
    print(f"flood: {flood_rps.group(1) if flood_rps else '?'} req/s")
    print(f"quiet records: {len(quiet)} made, {len(lat)} visible, {never} never (30 s)")
    if lat:
        print(f"visible after: median {lat[len(lat) // 2]:.2f} s, worst {lat[-1]:.2f} s")
    print(f"peak RSS: {peak[0] / 1024:.0f} MiB")
    print(f"dropped: {dropped or 'none'}")


if __name__ == "__main__":
    main()
