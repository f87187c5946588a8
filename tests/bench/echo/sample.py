#!/usr/bin/env python3
"""sample.py PID WARM SECS [--strace OUT | --perf OUT] -- LOADGEN ARGS...

Runs the load generator (the command after --) and prints its output line
followed by the figures below, on one line.

Samples one echo server while loadgen drives it, over (nearly) loadgen's
measured window:

1. waits until loadgen made its first write(2) (syscw in
   /proc/LOADGEN_PID/io): its connect phase makes none, and its warm-up clock
   starts just before it sends every connection's first message. (The
   server's fd count would not do: a slow acceptor lags behind the backlog.)
2. sleeps WARM s plus a margin of 5 % of SECS, so the window starts after
   loadgen's warm-up;
3. reads utime+stime of the whole process (all threads, dead ones included)
   from /proc/PID/stat, sleeps to the window's middle, reads VmRSS, sleeps to
   5 % of SECS before loadgen's end, reads utime+stime again.

With --strace OUT it instead runs `strace -c -f -p PID -o OUT` over that
window (counts only: ptrace slows the server several times over), with no
margins; with --perf OUT, `perf stat -e raw_syscalls:sys_enter -p PID` (a
kernel tracepoint counter: a few % overhead, no ptrace stops).

Prints one line of key=value:
  cpu_s=   CPU seconds the server used in the window (clock ticks / CLK_TCK)
  wall_s=  the window's length (monotonic clock)
  rss_kb=  VmRSS in the middle of the window
  threads= OS threads of the server then
  hwm_kb=  VmHWM (peak resident set) read after loadgen has ended, just
           before the caller kills the server: the peak over the whole run,
           connect phase included
  ok=      1 when the connect phase was seen, 0 if it timed out (no figures)
The caller divides cpu_s / wall_s by loadgen's msgs/s: CPU seconds per message.
"""
import os
import signal
import subprocess
import sys
import time

CONNECT_TIMEOUT = 60.0


def writes(pid):
    """write(2) calls the process made so far, -1 once it is gone."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    # comm may hold spaces or parens: the fields start after the last ')'.
    fields = s[s.rindex(")") + 2:].split()
    # after ')': state is field 3, utime 14, stime 15 (1-based, man 5 proc).
    return int(fields[14 - 3]) + int(fields[15 - 3])


def status(pid):
    """VmRSS in KiB and the number of OS threads, from /proc/PID/status."""
    rss, threads = -1, -1
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return f"{rss} threads={threads}"


def peak_rss(pid):
    """VmHWM in KiB (-1 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def main():
    i = sys.argv.index("--")
    args, lg_cmd = sys.argv[1:i], sys.argv[i + 1:]
    tracer = None
    for opt in ("--strace", "--perf"):
        if opt in args:
            i = args.index(opt)
            tracer = (opt, args[i + 1])
            del args[i:i + 2]
    pid = int(args[0])
    warm, secs = float(args[1]), float(args[2])
    tck = os.sysconf("SC_CLK_TCK")
    margin = 0.05 * secs

    # Started here, so the first look at its write count comes before its
    # connect phase is over (that phase takes milliseconds at least).
    lgp = subprocess.Popen(lg_cmd, stdout=subprocess.PIPE, text=True)
    lg = lgp.pid
    try:
        figures = sample(pid, lg, warm, secs, margin, tck, tracer)
    finally:
        out, _ = lgp.communicate()
    print(f"{out.strip()} {figures} hwm_kb={peak_rss(pid)} lg_rc={lgp.returncode}")


def sample(pid, lg, warm, secs, margin, tck, tracer):
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        n = writes(lg)
        if n < 0 or time.monotonic() > deadline:
            return f"ok=0 cpu_s=nan wall_s=nan rss_kb=-1 threads=-1 why={'gone' if n < 0 else 'timeout'}"
        if n > 0:
            break
        time.sleep(0.005)
    t_conn = time.monotonic()

    def sleep_until(t):
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)

    if tracer is not None:
        opt, out = tracer
        if opt == "--strace":
            # On the server's CPU, so loadgen's core is left alone.
            cmd = ["strace", "-c", "-f", "-q", "-o", out, "-p", str(pid)]
            start, end = t_conn + warm, t_conn + warm + secs
        else:
            cmd = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o", out, "-p", str(pid)]
            start, end = t_conn + warm + margin, t_conn + warm + secs - margin
        sleep_until(start)
        tr = subprocess.Popen(["taskset", "-c", "0"] + cmd, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        sleep_until((start + end) / 2)
        rss = status(pid)
        sleep_until(end)
        tr.send_signal(signal.SIGINT)
        try:
            # perf stat -p on a process of 1000 threads was seen not to end.
            tr.wait(timeout=20)
        except subprocess.TimeoutExpired:
            tr.kill()
            tr.wait()
            return f"ok=0 cpu_s=nan wall_s=nan rss_kb={rss} why=tracer_hung"
        t1 = time.monotonic()
        return f"ok=1 cpu_s=nan wall_s={t1 - t0:.4f} rss_kb={rss}"
    sleep_until(t_conn + warm + margin)
    c0, t0 = cpu_ticks(pid), time.monotonic()
    sleep_until(t_conn + warm + secs / 2)
    rss = status(pid)
    sleep_until(t_conn + warm + secs - margin)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    late = t0 - (t_conn + warm + margin)
    return f"ok=1 cpu_s={(c1 - c0) / tck:.4f} wall_s={t1 - t0:.4f} rss_kb={rss} late_s={late:.3f}"


if __name__ == "__main__":
    main()
