#!/usr/bin/env python3
"""Assembles docs/RESULTS.md from `qcs eval` output folders.

usage: scripts/results-md.py EVAL_ROOT OUT_MD HEADER_MD

EVAL_ROOT holds one folder per dataset (mnist, fashion-mnist), each with one folder per `qcs eval` run
(results.csv, results.md with the exact command line, plots). HEADER_MD is prepended verbatim. Every number
comes from the results.csv files; each section quotes the command that produced it.
"""
import csv
import os
import re
import shutil
import sys

root, out_md, header = sys.argv[1], sys.argv[2], sys.argv[3]
plots_dir = os.path.join(os.path.dirname(out_md), "results")
os.makedirs(plots_dir, exist_ok=True)

DATASETS = [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")]


def rows(ds, run):
    path = os.path.join(root, ds, run, "results.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def command(ds, run):
    path = os.path.join(root, ds, run, "results.md")
    if not os.path.exists(path):
        return None
    m = re.search(r"```sh\n(.*?)\n```", open(path).read(), re.S)
    if not m:
        return None
    cmd = m.group(1).strip()
    # the device paths become the repository's
    cmd = re.sub(r"^\S*/qcs(-\w+)? ", "qcs ", cmd)
    cmd = cmd.replace(".gpu/data/mnist-test.gz", "data/mnist/t10k-images-idx3-ubyte.gz")
    cmd = cmd.replace(".gpu/data/fashion-mnist-test.gz", "data/fashion-mnist/t10k-images-idx3-ubyte.gz")
    cmd = re.sub(r"--out /tmp/e/([\w-]+)/([\w-]+)", r"--out out/eval/\1/\2", cmd)
    cmd = re.sub(r"--model \.gpu/models/([\w.-]+)", r"--model assets/models/\1", cmd)
    return cmd


def fmt(r):
    return f"{float(r['psnr']):.2f} / {float(r['ssim']):.3f}"


def bits_label(b):
    return "linear" if b == "linear" else f"{b}-bit"


def method_label(r):
    m = r["method"]
    return {"qcs-sgm": "QCS-SGM", "qcs-sgm-plus": "QCS-SGM+", "biht": "BIHT", "back-projection": "back-projection"}.get(m, m)


def pivot(rs, row_key, col_key, cols, row_order=None):
    table = {}
    for r in rs:
        table.setdefault(row_key(r), {})[col_key(r)] = fmt(r)
    keys = row_order or list(table)
    lines = ["| | " + " | ".join(str(c) for c in cols) + " |", "|---|" + "--:|" * len(cols)]
    for k in keys:
        if k not in table:
            continue
        lines.append(f"| {k} | " + " | ".join(table[k].get(c, "–") for c in cols) + " |")
    return "\n".join(lines)


def image_scores(ds, run):
    """Per-image PSNR of the 1-bit QCS-SGM cells of a run, keyed by (M, image); empty without images.csv."""
    path = os.path.join(root, ds, run, "images.csv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {(r["measurements"], r["image"]): float(r["psnr"]) for r in csv.DictReader(f)
                if r["bits"] == "1" and r["method"] == "qcs-sgm"}


def paired(a, b, m):
    """Mean PSNR difference a − b over the images both scored at M, ± its standard error, and a's wins."""
    d = [a[k] - b[k] for k in a if k[0] == m and k in b]
    if len(d) < 2:
        return "–"
    mean = sum(d) / len(d)
    se = (sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5
    return f"{mean:+.2f} ± {se:.2f} ({sum(x > 0 for x in d)} of {len(d)})"


def section(title, ds, runs, body, note=None):
    out = [f"### {title}", ""]
    if note:
        out += [note, ""]
    out += [body, ""]
    cmds = [c for c in (command(ds, r) for r in runs) if c]
    if cmds:
        out += ["```sh"] + cmds + ["```", ""]
    return out


def copy_plot(ds, run, name, label):
    src = os.path.join(root, ds, run, name)
    if os.path.exists(src):
        dst = os.path.join(plots_dir, f"{ds}-{label}.png")
        shutil.copyfile(src, dst)
        return f"![{ds} {label}](results/{ds}-{label}.png)"
    return None


out = [open(header).read().rstrip(), ""]
for ds, title in DATASETS:
    if not os.path.isdir(os.path.join(root, ds)):
        continue
    out += [f"## {title}", ""]
    ms = ["25", "50", "100", "200", "400"]
    g = rows(ds, "gaussian12") + rows(ds, "gaussian3lin")
    order = []
    for b in ["1", "2", "3", "linear"]:
        for m in ["QCS-SGM", "BIHT", "back-projection"]:
            order.append(f"{m}, {bits_label(b)}")
    body = pivot(g, lambda r: f"{method_label(r)}, {bits_label(r['bits'])}", lambda r: r["measurements"], ms, order)
    plot = copy_plot(ds, "gaussian12", "psnr_vs_m.png", "psnr_vs_m-1-2-bit")
    plot2 = copy_plot(ds, "gaussian3lin", "psnr_vs_m.png", "psnr_vs_m-3-bit-linear")
    body += "\n\n" + "\n".join(p for p in [plot, plot2] if p)
    sampled = [r for r in g if r["levels"]]
    note = None
    if sampled:
        r = sampled[0]
        se = [float(x["psnr_se"]) for x in g if x.get("psnr_se")]
        note = (f"{r['images']} test images, schedule {r['levels']} × {r['steps_per_level']} "
                f"({r['nfe']} network evaluations), backend {r['backend']}.")
        if se:
            note += (f" The standard error of a mean PSNR here is {min(se):.2f} to {max(se):.2f} dB (`psnr_se` in"
                     " results.csv). The rows of a column share the images, the matrix and the noise draw, so a"
                     " difference within a column is a paired comparison, surer than those errors suggest.")
    out += section("Gaussian A, σ = 0.05: PSNR (dB) / SSIM against M", ds, ["gaussian12", "gaussian3lin"], body,
                   note)
    b = rows(ds, "budget")
    body = pivot(b, lambda r: method_label(r), lambda r: f"{bits_label(r['bits'])}, M = {r['measurements']}",
                 sorted({f"{bits_label(r['bits'])}, M = {r['measurements']}" for r in b}),
                 ["QCS-SGM", "BIHT", "back-projection"])
    out += section("Fixed budget Q·M = 400 bits", ds, ["budget"], body)
    ic = rows(ds, "illcond") + rows(ds, "correlated")
    mats = []
    for r in ic:
        if r["matrix"] not in mats:
            mats.append(r["matrix"])
    order = [f"{m}, {bits_label(b)}" for b in ["1", "3"] for m in ["QCS-SGM", "QCS-SGM+", "BIHT"]]
    body = pivot(ic, lambda r: f"{method_label(r)}, {bits_label(r['bits'])}", lambda r: r["matrix"], mats, order)
    out += section("QCS-SGM against QCS-SGM+ on ill-conditioned and correlated A (σ = 0.1, M = 400)", ds,
                   ["illcond", "correlated"], body)
    s = rows(ds, "structured")
    body = pivot(s, lambda r: r["matrix"], lambda r: r["measurements"], ["100", "400"], ["gaussian", "dct", "hadamard"])
    out += section("Structured operators against Gaussian (QCS-SGM, 1-bit, σ = 0.05)", ds, ["structured"], body)
    n = rows(ds, "nfe")
    count = n[0]["images"] if n else "the"
    lines = [f"| schedule | NFE | PSNR (dB) | SSIM | seconds for {count} images |", "|---|--:|--:|--:|--:|"]
    for r in sorted(n, key=lambda r: -int(r["nfe"])):
        lines.append(f"| {r['levels']} × {r['steps_per_level']} | {r['nfe']} | {float(r['psnr']):.2f} | "
                     f"{float(r['ssim']):.3f} | {float(r['seconds']):.1f} |")
    body = "\n".join(lines)
    p = copy_plot(ds, "nfe", "psnr_vs_nfe.png", "psnr_vs_nfe")
    if p:
        body += "\n\n" + p
    out += section("Quality against network evaluations (QCS-SGM, 1-bit, M = 200)", ds, ["nfe"], body)
    nu = rows(ds, "numerics")
    body = pivot(nu, lambda r: f"{r['numerics']}", lambda r: bits_label(r["bits"]), ["1-bit", "2-bit", "3-bit"],
                 ["stable", "reference"])
    out += section("Stable likelihood against the reference's clamped form (QCS-SGM, M = 200)", ds, ["numerics"], body)
    extra = [("yardstick-ref", "reference-trained checkpoint (ngf 64, 11.5k steps)"), ("other-ngf", "qcs, other ngf"),
             ("f16", "qcs, network in f16")]
    have = [(run, label) for run, label in extra if rows(ds, run)]
    if have:
        main = [r for r in rows(ds, "gaussian12") if r["bits"] == "1" and r["method"] == "qcs-sgm"]
        body_rows = [("qcs, shipped model", main)] + [(label, rows(ds, run)) for run, label in have]
        lines = ["| model | " + " | ".join(f"M = {m}" for m in ms) + " |", "|---|" + "--:|" * len(ms)]
        for label, rs in body_rows:
            by = {r["measurements"]: fmt(r) for r in rs if r["bits"] == "1"}
            lines.append(f"| {label} | " + " | ".join(by.get(m, "–") for m in ms) + " |")
        ours = image_scores(ds, "gaussian12")
        for run, label in have:
            theirs = image_scores(ds, run)
            cells = [paired(ours, theirs, m) for m in ms]
            if any(c != "–" for c in cells):
                lines.append(f"| shipped − {label.split(' (')[0]}, paired PSNR (ahead on) | " + " | ".join(cells) + " |")
        out += section("Models side by side (QCS-SGM, 1-bit, Gaussian A, σ = 0.05)", ds,
                       ["gaussian12"] + [run for run, _ in have], "\n".join(lines))
open(out_md, "w").write("\n".join(out).rstrip() + "\n")
print("wrote", out_md)
