#!/usr/bin/env python3
"""Run the workspace's test binaries, the slow stores' crates beside the rest.

`cargo test` runs its test binaries one after another, and most of their time here is
spent waiting on servers: moto (the DynamoDB server, one Python process) answers slowest,
and cache-dynamodb's tests take a third of the suite. The crates in BESIDE test only
against their own store's server, so they run one after another in a lane beside a
lane with every other binary: the suite takes about as long as its slower lane, not the
sum (measured: DynamoDB 50 s and Firestore 23 s against the rest's 65 s). Two lanes,
not more: on two cores more would make the tests wait on CPU. (cargo-nextest does this in general; it is not installed
here, and building it would cost more than it saves.)

Reads cargo's build messages on stdin, from
`cargo test --workspace --all-features --no-run --message-format=json-render-diagnostics`,
runs each test binary from its package's folder (as cargo does), prints each binary's
output whole when it ends, and exits 101 if any failed, naming how to rerun it.
"""
import json
import os
import subprocess
import sys
import threading

BESIDE = ("cache-dynamodb", "cache-firestore")

# Test threads per crate where RUST_TEST_THREADS (8 in scripts/test.sh) is too many:
# SecantusDB (the MongoDB server here) is one Python process, and with 8 threads
# sharing it its answers come late enough to fail timing-bound cases (3 of 5 runs
# here had one; 0 of 4 with 2 threads).
THREADS = {"cache-mongodb": "2"}

print_lock = threading.Lock()
failed = []


def binaries(lines):
    for line in lines:
        m = json.loads(line)
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        if not m.get("profile", {}).get("test"):
            continue
        target = m["target"]
        pkg_dir = os.path.dirname(m["manifest_path"])
        yield {
            "package": os.path.basename(pkg_dir),
            "dir": pkg_dir,
            "kind": target["kind"][0],
            "name": target["name"],
            "exe": m["executable"],
        }


def rerun(b):
    kind = b["kind"]
    what = f"--{kind} {b['name']}" if kind in ("test", "bin", "example", "bench") else "--lib"
    return f"cargo test -p {b['package']} --all-features {what}"


def environment():
    """The environment cargo gives a test: the toolchain's libraries on the library
    path (a proc-macro crate's test binary links libstd dynamically)."""
    env = dict(os.environ)
    libs = subprocess.run(
        ["rustc", "--print", "target-libdir"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.strip()
    paths = [libs, env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
    return env


ENV = environment()


def run_lane(lane):
    for b in lane:
        env = dict(ENV)
        if b["package"] in THREADS:
            env["RUST_TEST_THREADS"] = THREADS[b["package"]]
        p = subprocess.run(
            [b["exe"]],
            cwd=b["dir"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with print_lock:
            print(f"     Running {b['package']}: {b['kind']} {b['name']} ({b['exe']})")
            sys.stdout.write(p.stdout.decode(errors="replace"))
            sys.stdout.flush()
            if p.returncode != 0:
                failed.append(b)


def main():
    beside, rest = [], []
    for b in binaries(sys.stdin):
        (beside if b["package"] in BESIDE else rest).append(b)
    threads = [
        threading.Thread(target=run_lane, args=(lane,)) for lane in (beside, rest)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        print("\nfailed test binaries; rerun one with:", file=sys.stderr)
        for b in failed:
            print(f"  {rerun(b)}", file=sys.stderr)
        sys.exit(101)


main()
