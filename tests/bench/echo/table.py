#!/usr/bin/env python3
"""table.py RESULTS OUTDIR NOTES - bench_echo.sh's Markdown tables.

RESULTS holds one line of key=value per run (kind=main|perf|strace).
Main table: per (conns, size) cell and server, medians over the runs; the
ratios to epoll_echo are taken run by run (same repetition, same cell: the
servers ran back to back) and their median is shown.
Syscalls per message: `perf` = raw_syscalls:sys_enter over the window divided
by loadgen's msgs/s x window; `strace` = strace -c -f total divided by the
messages strace saw (successful read-family calls when SIZE <= 4096, where
one read is one message; else loadgen's rate x window, which strace slows).
"""
import math
import os
import statistics
import sys

LABELS = {
    "epoll": "epoll_echo (C, epoll ET)",
    "grove": "grove echo_server (StreamServer)",
    "grove_uring": "grove echo_server, GROVE_IO=uring",
    "thread": "thread_echo (C, pthreads)",
    "thread_grove": "thread_echo under grove-run",
    "thread_grove_uring": "thread_echo under grove-run, GROVE_IO=uring",
    "tdemo": "demos/threaded_echo (C, pthreads)",
    "tdemo_grove": "demos/threaded_echo under grove-run",
    "go": "echo.go (GOMAXPROCS=1)",
    "gevent": "gevent_echo.py",
}
READS = {"read", "recvfrom", "recvmsg", "readv", "recv"}


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            d = {}
            for tok in line.split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    d[k] = v
            if "msgs/s" not in d:
                continue
            for k in ("conns", "size", "rep", "threads", "rss_kb", "hwm_kb", "errors"):
                d[k] = int(d.get(k, -1))
            for k in ("msgs/s", "cpu_s", "wall_s", "p50_us", "p99_us"):
                d[k] = float(d.get(k, "nan"))
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
            calls = int(nums[3])
            errors = int(nums[4]) if len(nums) >= 5 else 0
            out[t[-1]] = (calls, errors)
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


def fmt_k(x):
    return "n/a" if math.isnan(x) else f"{x / 1000:.1f}k"


def fmt(x, spec):
    return "n/a" if x is None or math.isnan(x) else format(x, spec)


def main():
    results, outdir, notes = sys.argv[1:4]
    rows = parse(results)
    main_rows = [r for r in rows if r["kind"] == "main"]
    cells = []
    for r in rows:
        c = (r["conns"], r["size"])
        if c not in cells:
            cells.append(c)
    servers = []
    for r in rows:
        if r["server"] not in servers:
            servers.append(r["server"])

    def cpu_us(r):  # server CPU seconds per second / messages per second
        if r["ok"] != "1" or r["msgs/s"] <= 0 or math.isnan(r["cpu_s"]):
            return float("nan")
        return r["cpu_s"] / r["wall_s"] / r["msgs/s"] * 1e6

    sysc = {}  # (server, conns, size) -> (perf/msg, strace/msg, breakdown)
    for r in rows:
        key = (r["server"], r["conns"], r["size"])
        msgs = r["msgs/s"] * r["wall_s"]
        if r["kind"] == "perf":
            n = perf_count(os.path.join(outdir, f"perf.{r['server']}.{r['conns']}.{r['size']}"))
            p = n / msgs if n is not None and msgs > 0 else float("nan")
            sysc.setdefault(key, [float("nan"), float("nan"), {}, float("nan")])[0] = p
        elif r["kind"] == "strace":
            counts = strace_counts(os.path.join(outdir, f"strace.{r['server']}.{r['conns']}.{r['size']}"))
            reads_ok = sum(c - e for s, (c, e) in counts.items() if s in READS)
            m = reads_ok if r["size"] <= 4096 else msgs
            total = sum(c for c, _ in counts.values())
            e = sysc.setdefault(key, [float("nan"), float("nan"), {}, float("nan")])
            if m > 0:
                e[1] = total / m
                e[2] = {s: (c / m, er / m) for s, (c, er) in counts.items()}
                e[3] = m

    head = ("| server | conns | size | msgs/s median (min–max) | ÷ epoll msgs/s | CPU µs/msg median (min–max) "
            "| ÷ epoll CPU/msg | syscalls/msg perf / strace | RSS MiB | peak RSS MiB | OS threads | p99 ms | n |")
    sep = "|---|---:|---:|---|---:|---|---:|---|---:|---:|---:|---:|---:|"
    for title, pick in (("Throughput and CPU (≥ 1000 connections: CPU bound)", lambda c: c[0] >= 1000),
                        ("100 connections (wake-up latency bound: not a CPU comparison)", lambda c: c[0] < 1000)):
        sel = [c for c in cells if pick(c)]
        if not sel:
            continue
        print(f"\n### {title}\n")
        print(head)
        print(sep)
        for conns, size in sel:
            by = {s: {r["rep"]: r for r in main_rows
                      if r["server"] == s and r["conns"] == conns and r["size"] == size} for s in servers}
            base = by.get("epoll", {})
            for s in servers:
                rs = by[s]
                sc = sysc.get((s, conns, size), [float("nan")] * 2)
                if not rs:
                    if not math.isnan(sc[0]) or not math.isnan(sc[1]):
                        print(f"| {LABELS.get(s, s)} | {conns} | {size} B | | | | | {fmt(sc[0], '.2f')} / "
                              f"{fmt(sc[1], '.2f')} | | | | | 0 |")
                    continue
                tp = [r["msgs/s"] for r in rs.values()]
                cpu = [cpu_us(r) for r in rs.values()]
                cpu_ok = [x for x in cpu if not math.isnan(x)]
                tr = [rs[k]["msgs/s"] / base[k]["msgs/s"] for k in rs if k in base and base[k]["msgs/s"] > 0]
                cr = [cpu_us(rs[k]) / cpu_us(base[k]) for k in rs if k in base]
                rss = med([r["rss_kb"] / 1024 for r in rs.values() if r["rss_kb"] > 0])
                hwm = med([r["hwm_kb"] / 1024 for r in rs.values() if r["hwm_kb"] > 0])
                thr = med([r["threads"] for r in rs.values() if r["threads"] > 0])
                p99 = med([r["p99_us"] / 1000 for r in rs.values()])
                errs = sum(r["errors"] for r in rs.values())
                sc = sysc.get((s, conns, size), [float("nan")] * 2)
                cpu_rng = f" ({min(cpu_ok):.2f}–{max(cpu_ok):.2f})" if cpu_ok else ""
                size_s = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
                print(f"| {LABELS.get(s, s)} | {conns} | {size_s} | {fmt_k(med(tp))} ({fmt_k(min(tp))}–{fmt_k(max(tp))}) "
                      f"| {fmt(med(tr), '.2f')} | {fmt(med(cpu), '.2f')}{cpu_rng} | {fmt(med(cr), '.2f')} "
                      f"| {fmt(sc[0], '.2f')} / {fmt(sc[1], '.2f')} | {fmt(rss, '.1f')} | {fmt(hwm, '.1f')} | {fmt(thr, '.0f')} "
                      f"| {fmt(p99, '.1f')} | {len(rs)}{'' if errs == 0 else f' ({errs} errors)'} |")

    if any(v[2] for v in sysc.values()):
        print("\n### strace -c -f breakdown (calls per message; errors per message in parentheses)\n")
        print("| server | conns | size | messages seen | syscalls |")
        print("|---|---:|---:|---:|---|")
        for conns, size in cells:
            for s in servers:
                v = sysc.get((s, conns, size))
                if not v or not v[2]:
                    continue
                parts = []
                for name, (c, e) in sorted(v[2].items(), key=lambda kv: -kv[1][0]):
                    if c < 0.005:
                        continue
                    parts.append(f"{name} {c:.2f}" + (f" ({e:.2f})" if e >= 0.005 else ""))
                size_s = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
                print(f"| {LABELS.get(s, s)} | {conns} | {size_s} | {v[3]:.0f} | {', '.join(parts)} |")

    if os.path.exists(notes) and os.path.getsize(notes) > 0:
        print("\nNotes:\n")
        with open(notes) as f:
            for line in f:
                print(f"- {line.strip()}")


if __name__ == "__main__":
    main()
