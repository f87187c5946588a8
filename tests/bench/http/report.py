#!/usr/bin/env python3
"""report.py RESULTS NOTES - bench_http.sh's Markdown tables.

RESULTS holds one line of key=value per run (kind=main|perf|strace), each
naming its wrk output file (wrk=PATH); perf and strace outputs sit beside
it as perf.SERVER.CONNS and strace.SERVER.CONNS.

Main table, per (connections, server): medians over the runs of requests/s
(wrk), server CPU µs per request (utime+stime over the measured wrk run ÷
the requests wrk completed in it), p50/p99 latency (wrk --latency), VmRSS
mid-run. The ratio columns divide grove by Go run by run (same repetition,
same connections; the two ran back to back) and show the median ratio.
Syscalls per request: perf's raw_syscalls:sys_enter count, and strace -c's
per-call counts, each over a separate short run ÷ the requests wrk completed
in that run. The main table is printed last.
"""
import math
import os
import re
import statistics
import sys

LABELS = {
    "grove": "grove demos/http_server (1 hub)",
    "go": "Go net/http hello.go (GOMAXPROCS=1)",
}
BASE = "go"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms_of(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse_wrk(path):
    d = {"rps": float("nan"), "requests": 0, "p50": float("nan"), "p99": float("nan"),
         "errors": 0, "non2xx": 0}
    if not os.path.exists(path):
        return d
    with open(path) as f:
        text = f.read()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    if m:
        d["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([0-9.]+)(\w+)", text)
    if m:
        d["requests"] = int(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m:
            d["p" + pct] = ms_of(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        d["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        d["non2xx"] = int(m.group(1))
    return d


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            d = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if "server" not in d:
                continue
            for k in ("conns", "rep", "cpu_ticks", "clk_tck", "rss_kb"):
                d[k] = int(d.get(k, -1))
            d["window_s"] = float(d.get("window_s", "nan"))
            d.update(parse_wrk(d.get("wrk", "")))
            ok = d["requests"] > 0 and d["cpu_ticks"] >= 0 and d["clk_tck"] > 0
            d["cpu_us"] = d["cpu_ticks"] / d["clk_tck"] / d["requests"] * 1e6 if ok else float("nan")
            rows.append(d)
    return rows


def strace_counts(path):
    """{syscall: (calls, errors)} from strace -c output."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            t = line.split()
            if len(t) < 5 or t[-1] == "total" or t[0].startswith(("%", "-")):
                continue
            try:
                nums = [float(x) for x in t[:-1]]
            except ValueError:
                continue
            out[t[-1]] = (int(nums[3]), int(nums[4]) if len(nums) >= 5 else 0)
    return out


def perf_count(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            t = line.strip().split(",")
            if len(t) > 2 and t[2].startswith("raw_syscalls:sys_enter"):
                try:
                    return float(t[0])
                except ValueError:
                    return None
    return None


def med(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, spec):
    return "n/a" if x is None or math.isnan(x) else format(x, spec)


def rng(xs, spec):
    xs = [x for x in xs if not math.isnan(x)]
    return f"{fmt(med(xs), spec)} ({fmt(min(xs), spec)}–{fmt(max(xs), spec)})" if xs else "n/a"


def main():
    results, notes = sys.argv[1:3]
    rows = parse(results)
    main_rows = [r for r in rows if r["kind"] == "main"]
    servers = list(dict.fromkeys(r["server"] for r in rows))
    cells = sorted(set(r["conns"] for r in rows))

    if os.path.exists(notes) and os.path.getsize(notes) > 0:
        print("\nNotes:\n")
        with open(notes) as f:
            for line in f:
                print(f"- {line.strip()}")

    traced = [r for r in rows if r["kind"] in ("perf", "strace")]
    if traced:
        print("\n### Syscalls per request (separate 3 s runs; strace slows the server several times)\n")
        print("| server | conns | perf: syscalls/req | strace: syscalls/req | strace breakdown per request "
              "(errors in parentheses) |")
        print("|---|---:|---:|---:|---|")
        for conns in cells:
            for s in servers:
                p = next((r for r in traced if r["kind"] == "perf" and r["server"] == s and r["conns"] == conns), None)
                t = next((r for r in traced if r["kind"] == "strace" and r["server"] == s and r["conns"] == conns),
                         None)
                if p is None and t is None:
                    continue
                per = float("nan")
                if p is not None and p["requests"] > 0:
                    n = perf_count(os.path.join(os.path.dirname(p["wrk"]), f"perf.{s}.{conns}"))
                    per = n / p["requests"] if n is not None else float("nan")
                total, parts = float("nan"), []
                if t is not None and t["requests"] > 0:
                    counts = strace_counts(os.path.join(os.path.dirname(t["wrk"]), f"strace.{s}.{conns}"))
                    if counts:
                        total = sum(c for c, _ in counts.values()) / t["requests"]
                        for name, (c, e) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
                            if c / t["requests"] >= 0.005:
                                parts.append(f"{name} {c / t['requests']:.2f}" +
                                             (f" ({e / t['requests']:.2f})" if e / t["requests"] >= 0.005 else ""))
                print(f"| {LABELS.get(s, s)} | {conns} | {fmt(per, '.2f')} | {fmt(total, '.2f')} | "
                      f"{', '.join(parts) or 'n/a'} |")

    if not main_rows:
        return
    print("\n### Requests/s, server CPU per request, latency (wrk -t1; medians, min–max)\n")
    print(f"| server | conns | k req/s | ÷ {BASE} req/s | CPU µs/req | ÷ {BASE} CPU/req | p50 ms | p99 ms | "
          "RSS MiB | errors | n |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for conns in cells:
        by = {s: {r["rep"]: r for r in main_rows if r["server"] == s and r["conns"] == conns} for s in servers}
        base = by.get(BASE, {})
        for s in servers:
            rs = by[s]
            if not rs:
                continue
            vals = list(rs.values())
            tr = [rs[k]["rps"] / base[k]["rps"] for k in rs if k in base and base[k]["rps"] > 0]
            cr = [rs[k]["cpu_us"] / base[k]["cpu_us"] for k in rs if k in base and base[k]["cpu_us"] > 0]
            errs = sum(r["errors"] + r["non2xx"] for r in vals)
            print(f"| {LABELS.get(s, s)} | {conns} | {rng([r['rps'] / 1000 for r in vals], '.1f')} "
                  f"| {fmt(med(tr), '.2f')} | {rng([r['cpu_us'] for r in vals], '.2f')} | {fmt(med(cr), '.2f')} "
                  f"| {fmt(med([r['p50'] for r in vals]), '.2f')} | {fmt(med([r['p99'] for r in vals]), '.2f')} "
                  f"| {fmt(med([r['rss_kb'] / 1024 for r in vals if r['rss_kb'] > 0]), '.1f')} | {errs} "
                  f"| {len(vals)} |")


if __name__ == "__main__":
    main()
