#!/usr/bin/python3
"""report.py -- turn run.sh's samples into results.json, results.md and results.png.

    report.py --samples samples.tsv --meta meta.json --out DIR

samples.tsv has one line per sample: system, job, run, kind, value, where kind is
"value" (a number), "failed" (value = why) or "status" (job "*": the whole system
did not run, e.g. "not built"). The catalogue below gives each job id its title,
unit and targets; run.sh's jobs.sh must use the same ids. Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

SYSTEMS = ["kmemfs", "tmpfs", "passthrough_ll"]

# Targets for kmemfs, checked on the median. "abs" is (op, value); "vs_pll" asks
# kmemfs to beat passthrough_ll; "vs_tmpfs" asks for at least 1/factor of tmpfs.
SEQ_TARGET = {"abs": (">=", 2.5), "vs_pll": True, "vs_tmpfs": 2}
RAND_TARGET = {"abs": (">=", 30000), "vs_pll": True}


def job(jid, title, unit, fmt, better="higher", plot=True, **targets):
    return {"id": jid, "title": title, "unit": unit, "fmt": fmt, "better": better,
            "plot": plot, "targets": targets}


def catalogue(meta):
    sz = meta.get("sizes", {})
    mib = lambda b: f"{b // 1048576} MiB" if b < 1 << 30 else f"{b // (1 << 30)} GiB"
    seq, rnd = mib(sz.get("seq", 0)), mib(sz.get("rand", 0))
    pun, cln = mib(sz.get("punch", 0)), mib(sz.get("clone", 0))
    files = f"{sz.get('files', 0) // 1000}k"
    small = f"{sz.get('files_small', 0) // 1000}k"
    jobs = []
    for mode, mtitle in (("buf", "page cache"), ("direct", "O_DIRECT")):
        for nj in (1, 2):
            for rw in ("write", "read"):
                jobs.append(job(f"seq-{rw}-{nj}j-{mode}",
                                f"seq {rw} 1 MiB, {seq}, {nj} job{'s' if nj > 1 else ''}, {mtitle}",
                                "GiB/s", "{:.2f}", **SEQ_TARGET))
    eng = meta.get("qd16_engine", "io_uring")
    jobs += [
        job("rand-read-qd1", f"rand read 4 KiB, psync QD1, O_DIRECT, {rnd}", "IOPS", "k", **RAND_TARGET),
        job("rand-write-qd1", f"rand write 4 KiB, psync QD1, O_DIRECT, {rnd}", "IOPS", "k", **RAND_TARGET),
        job("rand-read-qd16", f"rand read 4 KiB, {eng} QD16, O_DIRECT", "IOPS", "k", **RAND_TARGET),
        job("rand-write-qd16", f"rand write 4 KiB, {eng} QD16, O_DIRECT", "IOPS", "k", **RAND_TARGET),
        job("rand-write-fsync", "rand write 4 KiB + fsync each, psync", "IOPS", "k", vs_pll=True),
        job("punch-64k", f"punch hole 64 KiB (every other range of {pun})", "ops/s", "k", vs_pll=True),
        # Shmem is system-wide: other users of /dev/shm move it too. The blocks of
        # the backing object (pool file or tmpfs file) are exact, so the target is there.
        job("punch-given-back-half", "memory given back, every other 64 KiB punched "
            "(Shmem, system-wide: noisy)", "% punched", "{:.0f}", plot=False),
        job("punch-given-back-all", "memory given back, all punched (Shmem, system-wide: noisy)",
            "% punched", "{:.0f}", plot=False),
        job("punch-backing-back-half", "backing blocks freed, every other 64 KiB punched",
            "% punched", "{:.0f}", plot=False),
        job("punch-backing-back-all", "backing blocks freed, all punched", "% punched", "{:.0f}",
            plot=False, abs=(">=", 90)),
        job("clone-cp", f"CLONE SLOT: cp of a {cln} file (coreutils cp → copy_file_range; "
            "kmemfs shares pages, the others copy)", "s", "{:.2f}", better="lower", vs_pll=True),
        job("dbench", "dbench, 2 clients (NetBench mix)", "MB/s", "{:.0f}", vs_pll=True),
        job("fcreate-create", f"create {files} empty files, one dir", "ops/s", "k",
            abs=(">=", 10000), vs_pll=True),
        job("fcreate-stat", f"stat {files} files", "ops/s", "k", vs_pll=True),
        job("fcreate-unlink", f"unlink {files} files", "ops/s", "k", vs_pll=True),
        job("fcreate-small-create", f"create {small} empty files, one dir", "ops/s", "k",
            abs=(">=", 10000), vs_pll=True),
        job("fcreate-small-stat", f"stat {small} files", "ops/s", "k", vs_pll=True),
        job("fcreate-small-unlink", f"unlink {small} files", "ops/s", "k", vs_pll=True),
        job("mount-files", f"mount of a pool holding {files} files (until stat MNT)", "s",
            "{:.3f}", better="lower", plot=False, abs=("<", 1.0)),
        job("mount-list", f"... then du -s of the {files} files (a listing that stats every name)",
            "s", "{:.3f}", better="lower", plot=False),
        job("rss-anon-before", "daemon RssAnon before the data jobs", "MiB", "{:.1f}",
            better="lower", plot=False),
        job("rss-anon-after-data", "daemon RssAnon after the data jobs", "MiB", "{:.1f}",
            better="lower", plot=False),
        job("rss-anon-growth", "daemon RssAnon growth over the data jobs", "MiB", "{:.1f}",
            better="lower", plot=False, abs=("<", 32)),
        job("rss-shmem-after-data", "daemon RssShmem (mapped pool/shm) after the data jobs", "MiB",
            "{:.0f}", better="lower", plot=False),
        job("load1", "1-min load average before the system's jobs (noise)", "", "{:.2f}",
            better="lower", plot=False),
    ]
    return jobs


def fmt_value(j, v):
    if j["fmt"] == "k":
        return f"{v / 1000:.1f}k" if abs(v) >= 1000 else f"{v:.0f}"
    return j["fmt"].format(v)


def read_samples(path):
    values, failures, status = {}, {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            sysname, jid, run, kind, val = parts
            if kind == "value":
                try:
                    values.setdefault((sysname, jid), []).append((int(run), float(val)))
                except ValueError:
                    failures.setdefault((sysname, jid), []).append(f"run {run}: bad value {val}")
            elif kind == "failed":
                failures.setdefault((sysname, jid), []).append(f"run {run}: {val}")
            elif kind == "status":
                status.setdefault(sysname, set()).add(val)
    return values, failures, status


def derive_rss_growth(values):
    """rss-anon-growth per run = after-data - before, for each daemon"""
    for sysname in SYSTEMS:
        before = dict(values.get((sysname, "rss-anon-before"), []))
        after = dict(values.get((sysname, "rss-anon-after-data"), []))
        growth = [(r, after[r] - before[r]) for r in sorted(after) if r in before]
        if growth:
            values[(sysname, "rss-anon-growth")] = growth


def check(op, a, b):
    return a >= b if op == ">=" else a < b if op == "<" else a > b


def evaluate(j, res):
    """pass/fail of kmemfs's median against j's targets; None where not applicable"""
    t, out = j["targets"], {}
    k = res.get("kmemfs", {}).get("median")
    p = res.get("passthrough_ll", {}).get("median")
    tm = res.get("tmpfs", {}).get("median")
    lower = j["better"] == "lower"
    if "abs" in t:
        op, val = t["abs"]
        out["target"] = {"op": op, "value": val, "pass": None if k is None else check(op, k, val)}
    if t.get("vs_pll"):
        out["vs_passthrough_ll"] = {"pass": None if k is None or p is None
                                    else (k < p if lower else k > p)}
    if t.get("vs_tmpfs"):
        f = t["vs_tmpfs"]
        out["vs_tmpfs"] = {"factor": f, "pass": None if k is None or tm is None
                           else (k <= tm * f if lower else k >= tm / f)}
    return out


def build(values, failures, status, meta):
    derive_rss_growth(values)
    jobs = []
    for j in catalogue(meta):
        res = {}
        for s in SYSTEMS:
            samples = [v for _, v in sorted(values.get((s, j["id"]), []))]
            r = {"samples": samples}
            if samples:
                r.update(median=statistics.median(samples), min=min(samples), max=max(samples))
            if failures.get((s, j["id"])):
                r["failed"] = failures[(s, j["id"])]
            if not samples and status.get(s):
                r["status"] = sorted(status[s])[0]
            res[s] = r
        if not any(r["samples"] or r.get("failed") for r in res.values()):
            continue  # the job did not run at all (--jobs, or kmemfs-only job without kmemfs)
        jobs.append({**{k: j[k] for k in ("id", "title", "unit", "better")},
                     "results": res, "targets": evaluate(j, res), "_cat": j})
    return jobs


def cpu_rows(values, jobs, systems_run):
    """CPU microseconds per request: the daemon's and the submitting process's"""
    rows = []
    for j in jobs:
        row = {"id": j["id"], "title": j["title"]}
        for kind in ("daemon", "client"):
            for s in systems_run:
                v = [x for _, x in sorted(values.get((s, f"cpu-{kind}:{j['id']}"), []))]
                if v:
                    row[f"{kind}:{s}"] = {"samples": v, "median": statistics.median(v),
                                          "min": min(v), "max": max(v)}
        if len(row) > 2:
            rows.append(row)
    return rows


def cpu_md(rows, systems_run):
    daemons = [s for s in systems_run if s != "tmpfs"]
    cols = [("daemon", s) for s in daemons] + [("client", s) for s in systems_run]
    lines = ["", "## CPU per request", "",
             "Microseconds of CPU per I/O request (fio `total_ios`; for the file rows, per file "
             "over create + stat + unlink), median (min–max). *daemon*: the FUSE daemon's user + "
             "system time from /proc/PID/stat (10 ms ticks); *client*: fio's own user + system "
             "time, which includes the kernel's FUSE client and page cache work. Unlike throughput "
             "these barely depend on how busy the shared machine is.", "",
             "| job | " + " | ".join(f"{k} {s}" for k, s in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = []
        for k, s in cols:
            c = r.get(f"{k}:{s}")
            if not c:
                cells.append("—")
            elif len(c["samples"]) > 1:
                cells.append(f"{c['median']:.1f} ({c['min']:.1f}–{c['max']:.1f})")
            else:
                cells.append(f"{c['median']:.1f}")
        lines.append(f"| {r['title']} | " + " | ".join(cells) + " |")
    return lines


def cell(j, r, runs):
    if "median" in r:
        s = fmt_value(j, r["median"])
        if len(r["samples"]) > 1:
            s += f" ({fmt_value(j, r['min'])}–{fmt_value(j, r['max'])})"
        if r.get("failed"):
            s += " ⚠"
        return s
    if r.get("failed"):
        return "failed: " + r["failed"][0].split(": ", 1)[-1]
    return r.get("status", "—")


def verdict(v):
    if v is None:
        return "—"
    return "n/a" if v["pass"] is None else ("pass" if v["pass"] else "**FAIL**")


def write_md(jobs, meta, systems_run, path, cpu=None):
    runs = meta.get("runs", 1)
    lines = [
        "# kmemfs benchmark results",
        "",
        "Generated by `bench/run.sh` — do not edit by hand; see `docs/performance.md` for the analysis.",
        "",
        f"* run: {meta.get('started')} → {meta.get('finished')}, "
        f"{'**quick mode**, ' if meta.get('quick') else ''}{runs} run(s) per job; "
        "cells are median (min–max)",
        f"* machine: {meta.get('cpu')} × {meta.get('cpus')} CPUs, {meta.get('mem_gib')} GiB, "
        f"kernel {meta.get('kernel')}, {meta.get('fio')}, tree at {meta.get('kmemfs_commit')}, "
        f"kmemfs binary sha256 {meta.get('kmemfs_binary_sha256') or '-'} "
        f"built {meta.get('kmemfs_binary_mtime') or '-'}",
        f"* load average at start {meta.get('load_start')}, at end {meta.get('load_end')} "
        "(2 shared cores: a load above ~0.5 before a run means others were busy and figures are noisy)",
        "* kmemfs: pool file on /dev/shm (tmpfs); tmpfs: a fresh tmpfs; passthrough_ll: libfuse "
        "3.14's example, default options, over a fresh tmpfs",
        f"* FUSE over io_uring: {meta.get('fuse_uring', 'not recorded')} "
        "(passthrough_ll's libfuse 3.14 cannot use it)",
        "* targets apply to kmemfs: absolute target, ahead of passthrough_ll, within 2× of tmpfs "
        "(sequential only). Pass/fail uses medians.",
        "",
    ]
    hdr = ["job", "unit"] + systems_run + ["target", "kmemfs vs target", "vs passthrough_ll",
                                           "vs tmpfs (≤2×)"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for j in jobs:
        cat, t = j["_cat"], j["targets"]
        tgt = "—"
        if "target" in t:
            op, val = t["target"]["op"], t["target"]["value"]
            tgt = f"{op} {fmt_value(cat, val)}"
        row = [j["title"], j["unit"]] + [cell(cat, j["results"][s], runs) for s in systems_run]
        row += [tgt, verdict(t.get("target")), verdict(t.get("vs_passthrough_ll")),
                verdict(t.get("vs_tmpfs"))]
        lines.append("| " + " | ".join(row) + " |")
    fails = [(j["id"], s, f) for j in jobs for s in systems_run
             for f in j["results"][s].get("failed", [])]
    if fails:
        lines += ["", "Failures (⚠ marks a median taken over the runs that worked):", ""]
        lines += [f"* {s} {jid}: {f}" for jid, s, f in fails]
    if cpu:
        lines += cpu_md(cpu, systems_run)
    lines += ["", "![kmemfs and passthrough_ll relative to tmpfs](results.png)", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_plot(jobs, systems_run, out_dir):
    """bars relative to tmpfs (= 1), higher is better for every job, log scale"""
    others = [s for s in systems_run if s != "tmpfs"]
    rows = []
    for j in jobs:
        if not j["_cat"]["plot"]:
            continue
        tm = j["results"].get("tmpfs", {}).get("median")
        if not tm:
            continue
        vals = []
        for s in others:
            m = j["results"][s].get("median")
            if not m:
                vals.append("NaN")
            else:
                vals.append(f"{(tm / m if j['better'] == 'lower' else m / tm):.4f}")
        rows.append((j["id"], vals))
    if not rows or not others:
        return False
    dat = os.path.join(out_dir, "results.dat")
    with open(dat, "w") as f:
        f.write("# job " + " ".join(others) + "  (relative to tmpfs, higher is better)\n")
        for jid, vals in rows:
            f.write(f"{jid} {' '.join(vals)}\n")
    cols = " , ".join(f"'{dat}' using {i + 2}:xtic(1) title '{s}'" for i, s in enumerate(others))
    script = f"""
set terminal pngcairo size 1400,620 font ',10'
set output '{os.path.join(out_dir, 'results.png')}'
set title 'kmemfs and passthrough\\_ll relative to tmpfs (= 1, dashed); higher is better'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [0.01:*]
set rmargin 10
set bmargin 9
set grid ytics
set xtics rotate by -40 noenhanced
set key top right noenhanced
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lw 1.5
plot {cols}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("report.py: gnuplot: " + r.stderr, file=sys.stderr)
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.meta) as f:
        meta = json.load(f)
    values, failures, status = read_samples(a.samples)
    systems_run = [s for s in SYSTEMS if s in meta.get("systems", "").split(",")]
    jobs = build(values, failures, status, meta)
    os.makedirs(a.out, exist_ok=True)
    cpu = cpu_rows(values, jobs, systems_run)
    doc = {"meta": meta, "systems": systems_run,
           "jobs": [{k: v for k, v in j.items() if k != "_cat"} for j in jobs],
           "cpu_us_per_request": cpu}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    write_md(jobs, meta, systems_run, os.path.join(a.out, "results.md"), cpu)
    if not write_plot(jobs, systems_run, a.out):
        print("report.py: no plot written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
