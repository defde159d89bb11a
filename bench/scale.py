#!/usr/bin/env python3
"""Cold start and scale for Edgeward: run by ./bench/run.sh, or alone after a release build.

  bench/scale.py --edgeward target/release/edgeward --guest target/guests/.../hello.wasm

1. Upload to first response: a fresh server, a component it has never seen (so it compiles),
   the time from sending the upload to the first 200 from the new package (median of 3).
2. Restart with 100 packages: 100 distinct components deployed, the server stopped (SIGTERM)
   and started again on the same data dir; the time from process start to 'ready' and to the
   last of the 100 answering (median of 3). Precompiled artifacts are reused.
3. Scale: 1,000 packages (the same hello component under 1,000 names, as a template deployed
   by many teams, plus the 100 distinct ones already there); resident memory idle, after one
   request to each, and the request rate across all of them (wrk, round robin over the 1,100).

Distinct components are the hello guest with a custom section appended (a different sha256,
so a different compile); their code is identical, their artifacts are not shared.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def variant(wasm, tag):
    """The component with a custom section `edgeward-bench` holding `tag` appended."""
    name = b"edgeward-bench"
    payload = leb(len(name)) + name + tag.encode()
    return wasm + b"\x00" + leb(len(payload)) + payload


class Server:
    def __init__(self, binary, data_dir):
        self.binary, self.data_dir = binary, data_dir
        self.proc = None

    def start(self):
        t0 = time.monotonic()
        self.log = open(os.path.join(os.path.dirname(self.data_dir), "server.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir,
             "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, env={**os.environ, "EDGEWARD_LOG": "warn"})
        for line in self.proc.stdout:
            line = line.decode().strip()
            if line.startswith("listening: data-plane "):
                self.url = line.split()[-1]
            elif line.startswith("listening: api "):
                self.api = line.split()[-1]
            elif line == "ready":
                break
        ready = time.monotonic() - t0
        self.token = open(os.path.join(self.data_dir, "admin.token")).read().strip()
        return t0, ready

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)

    def call(self, method, path, body=None, content_type="application/json"):
        req = urllib.request.Request(self.api + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def deploy(self, package, wasm):
        status, body = self.call("POST", f"/v1/projects/bench/packages/{package}/versions",
                                 wasm, "application/wasm")
        assert status == 201, (status, body)

    def get(self, package):
        try:
            with urllib.request.urlopen(f"{self.url}/bench/{package}/", timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    def rss_kib(self, field="VmRSS"):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])

    def rss_split(self):
        """Resident memory by kind, MiB: anonymous (heap, stacks), file-backed (the mapped
        artifacts' code and the binary), shared memory."""
        return {k: round(self.rss_kib(k) / 1024, 1) for k in ("RssAnon", "RssFile", "RssShmem")}


def until_ok(server, package, deadline=30):
    end = time.monotonic() + deadline
    while server.get(package) != 200:
        assert time.monotonic() < end, f"{package} never answered"
        time.sleep(0.002)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeward", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--distinct", type=int, default=100)
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    hello = open(args.guest, "rb").read()
    results = {}
    tmp = tempfile.mkdtemp(prefix="edgeward-scale-")
    server = Server(args.edgeward, os.path.join(tmp, "data"))
    server.start()
    assert server.call("POST", "/v1/projects", b'{"name":"bench"}')[0] in (201, 409)

    log("==> upload to first response (a component never seen, so compiled)")
    times = []
    for i in range(3):
        wasm = variant(hello, f"cold-{i}")
        t0 = time.monotonic()
        server.deploy(f"cold{i}", wasm)
        until_ok(server, f"cold{i}")
        times.append(time.monotonic() - t0)
    results["upload_to_first_response_s"] = statistics.median(times)
    log(f"    {[round(t, 3) for t in times]} s")

    log(f"==> deploying {args.distinct} distinct components")
    t0 = time.monotonic()
    for i in range(args.distinct):
        server.deploy(f"d{i}", variant(hello, f"distinct-{i}"))
        if (i + 1) % 25 == 0:
            log(f"    {i + 1}/{args.distinct}")
    results["deploy_distinct_s_each"] = (time.monotonic() - t0) / args.distinct

    log(f"==> restart with {args.distinct + 3} packages (artifacts reused)")
    ready, serving = [], []
    for _ in range(3):
        server.stop()
        t0, r = server.start()
        for i in range(args.distinct):
            until_ok(server, f"d{i}")
        serving.append(time.monotonic() - t0)
        ready.append(r)
    results["restart_ready_s"] = statistics.median(ready)
    results["restart_all_serving_s"] = statistics.median(serving)
    log(f"    ready {[round(t, 3) for t in ready]} s, all serving {[round(t, 3) for t in serving]} s")

    log(f"==> deploying {args.packages} packages of the same component")
    t0 = time.monotonic()
    for i in range(args.packages):
        server.deploy(f"p{i}", hello)
        if (i + 1) % 250 == 0:
            log(f"    {i + 1}/{args.packages}")
    results["deploy_same_s_each"] = (time.monotonic() - t0) / args.packages
    server.stop()
    server.start()
    time.sleep(1)
    results["rss_idle_mib"] = server.rss_kib() / 1024
    results["rss_idle_split_mib"] = server.rss_split()
    names = [f"p{i}" for i in range(args.packages)] + [f"d{i}" for i in range(args.distinct)]
    for n in names:
        assert server.get(n) == 200, n
    results["rss_after_one_request_each_mib"] = server.rss_kib() / 1024
    results["rss_after_one_request_each_split_mib"] = server.rss_split()
    # Components idle for --code-idle-seconds (default 10) give back their code pages; the
    # release runs every half of that, so all of it is done 10 + 5 + 1 s after the last use.
    log("==> idle for 16 s (the code release)")
    time.sleep(16)
    results["rss_after_idle_release_mib"] = server.rss_kib() / 1024
    results["rss_after_idle_release_split_mib"] = server.rss_split()
    for n in names:
        assert server.get(n) == 200, n
    results["rss_after_a_second_request_each_mib"] = server.rss_kib() / 1024

    log(f"==> wrk round robin over {len(names)} packages, {args.duration}s, c=16")
    script = os.path.join(tmp, "rr.lua")
    with open(script, "w") as f:
        f.write("paths = {" + ",".join(f'"/bench/{n}/"' for n in names) + "}\n")
        f.write("i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                "  return wrk.format('GET', paths[i])\nend\n")
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{args.duration}s", "-s", script, server.url],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            results["round_robin_req_s"] = float(line.split()[1])
        if "Non-2xx" in line:
            raise SystemExit(f"errors during the round robin run:\n{out}")
    results["rss_after_run_mib"] = server.rss_kib() / 1024
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
