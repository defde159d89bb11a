#!/usr/bin/env python3
"""Cluster propagation: how long a change made through one host takes to be in effect on the others.

    propagation.py --token TOK --api-a URL --api-b URL --data-b URL --data-c URL --wasm hello.wasm

Deploy: uploads the hello guest through A's API as a new package bench/p<i> each sample, then
polls B's and C's data planes (`/bench/p<i>/`) every --poll-ms until each answers 200; the time
from the upload's response to the first 200.

Secret: PUTs the project secret --secret-name = <value i> through B's API, then polls C's
`/bench/secrets/?name=NAME&reveal=1` (the secrets guest, deployed as bench/secrets) until the
value is the new one; the time from the PUT's response to the first match. C read the previous
value just before, so it holds it in its secret cache (hosts run with a 30 s TTL): only the
change feed can make this fast.

Per-sample times go to stderr; the summary lines to stdout:

    cluster: deploy propagation  median X ms  max Y ms (N)  on C: median X ms  max Y ms
    cluster: secret propagation  median X ms  max Y ms (N)

A sample not seen within --timeout-s fails the run. Standard library only.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request


def request(method, url, token=None, body=None, content_type=None, timeout=10.0):
    """(status, body bytes); HTTP errors are answers too, connection errors are (0, b"")."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def ms(seconds):
    return seconds * 1000.0


def summary(times):
    return f"median {statistics.median(times):.1f} ms  max {max(times):.1f} ms"


def deploy_samples(args, wasm):
    on_b, on_c = [], []
    for i in range(1, args.samples + 1):
        package = f"{args.deploy_prefix}{i}"
        url = f"{args.api_a}/v1/projects/{args.project}/packages/{package}/versions"
        status, body = request("POST", url, args.token, wasm, "application/wasm", timeout=60)
        t0 = time.perf_counter()
        if status != 201:
            sys.exit(f"upload of {args.project}/{package} through A: {status} {body[:500]!r}")
        pending = {"B": args.data_b, "C": args.data_c}
        seen = {}
        while pending:
            for host, base in list(pending.items()):
                code, _ = request("GET", f"{base}/{args.project}/{package}/")
                if code == 200:
                    seen[host] = time.perf_counter() - t0
                    del pending[host]
            if pending:
                if time.perf_counter() - t0 > args.timeout_s:
                    sys.exit(f"deploy of {args.project}/{package}: not served on "
                             f"{', '.join(pending)} within {args.timeout_s} s")
                time.sleep(args.poll_ms / 1000.0)
        on_b.append(ms(seen["B"]))
        on_c.append(ms(seen["C"]))
        print(f"deploy {i:>2}: B {ms(seen['B']):7.1f} ms  C {ms(seen['C']):7.1f} ms (version "
              f"{json.loads(body).get('version')})", file=sys.stderr)
    return on_b, on_c


def secret_value_on_c(args):
    url = f"{args.data_c}/{args.project}/{args.secrets_package}/?name={args.secret_name}&reveal=1"
    code, body = request("GET", url)
    if code != 200:
        return None
    try:
        return json.loads(body).get("value")
    except ValueError:
        return None


def put_secret(args, value):
    url = f"{args.api_b}/v1/projects/{args.project}/secrets/{args.secret_name}"
    status, body = request("PUT", url, args.token, json.dumps({"value": value}).encode(),
                           "application/json")
    if status != 200:
        sys.exit(f"PUT secret {args.secret_name} through B: {status} {body[:500]!r}")


def wait_secret(args, value):
    """Seconds from now until C's guest reads `value`."""
    t0 = time.perf_counter()
    while True:
        if secret_value_on_c(args) == value:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > args.timeout_s:
            sys.exit(f"secret {args.secret_name}: C did not read {value!r} within "
                     f"{args.timeout_s} s (last read {secret_value_on_c(args)!r})")
        time.sleep(args.poll_ms / 1000.0)


def secret_samples(args):
    # A first value, read on C: from here on C always holds the previous value in its cache.
    put_secret(args, "propagation-value-0")
    wait_secret(args, "propagation-value-0")
    times = []
    for i in range(1, args.samples + 1):
        value = f"propagation-value-{i}"
        if secret_value_on_c(args) != f"propagation-value-{i - 1}":
            sys.exit("C does not read the previous value: the sample would not be a cache hit")
        put_secret(args, value)
        took = wait_secret(args, value)
        times.append(ms(took))
        print(f"secret {i:>2}: C {ms(took):7.1f} ms", file=sys.stderr)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--token", required=True, help="a platform admin's bearer token")
    p.add_argument("--api-a", required=True, help="host A's API base URL (deploys go here)")
    p.add_argument("--api-b", required=True, help="host B's API base URL (secret writes go here)")
    p.add_argument("--data-b", required=True, help="host B's data-plane base URL")
    p.add_argument("--data-c", required=True, help="host C's data-plane base URL")
    p.add_argument("--wasm", required=True, help="the hello guest, uploaded each deploy sample")
    p.add_argument("--project", default="bench")
    p.add_argument("--deploy-prefix", default="p", help="deploy samples go to PROJECT/<prefix><i>")
    p.add_argument("--secrets-package", default="secrets", help="where the secrets guest runs")
    p.add_argument("--secret-name", default="PROPAGATION")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--poll-ms", type=float, default=5.0)
    p.add_argument("--timeout-s", type=float, default=30.0)
    p.add_argument("--skip-deploy", action="store_true")
    p.add_argument("--skip-secret", action="store_true")
    args = p.parse_args()
    for k in ("api_a", "api_b", "data_b", "data_c"):
        setattr(args, k, getattr(args, k).rstrip("/"))

    lines = []
    if not args.skip_deploy:
        with open(args.wasm, "rb") as f:
            wasm = f.read()
        on_b, on_c = deploy_samples(args, wasm)
        lines.append(f"cluster: deploy propagation  {summary(on_b)} ({len(on_b)})  "
                     f"on C: {summary(on_c)}")
    if not args.skip_secret:
        times = secret_samples(args)
        lines.append(f"cluster: secret propagation  {summary(times)} ({len(times)})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
