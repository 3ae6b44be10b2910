#!/usr/bin/env python3
"""Summarises the JSON of scripts/trust-runs.sh into the tables of docs/results.md (markdown on stdout)."""
import json, os, statistics, sys

out = sys.argv[1] if len(sys.argv) > 1 else "trust-runs"
order = ["eigenscore", "eigenscore-2s", "eigenscore+", "eigenscore+1d", "trace", "recon-error",
         "recon-error-2s", "msma", "diffpath-6d", "combined"]

def acceptance():
    print("| method | n_fit = 100 | n_fit = 200 | n_fit = 1,000 |")
    print("|---|---|---|---|")
    runs = {}
    for f in sorted(os.listdir(out)):
        if f.startswith("acceptance-"):
            _, s, n = f[:-5].split("-")
            runs.setdefault(int(n[1:]), []).append(json.load(open(os.path.join(out, f))))
    for m in order:
        cells = []
        for n in (100, 200, 1000):
            acc = [r["methods"][m]["id_accepted"] for r in runs.get(n, []) if m in r["methods"]]
            if not acc:
                cells.append("-")
                continue
            cells.append("%.3f (%.3f–%.3f, %d seeds)" % (statistics.mean(acc), min(acc), max(acc), len(acc)))
        print("| %s | %s |" % (m, " | ".join(cells)))

def suite(name):
    r = json.load(open(os.path.join(out, name)))
    pairs = r["pairs"]
    print("| method | NFE/img | " + " | ".join(p["id"] + " → " + p["ood"] for p in pairs) + " | mean | worst |")
    print("|" + "---|" * (len(pairs) + 4))
    for m in order + ["eigenscore-paper"]:
        if m not in pairs[0]["methods"]:
            continue
        cells, aurocs = [], []
        for p in pairs:
            mr = p["methods"][m]
            ci = mr.get("ci95", {}).get("auroc")
            aurocs.append(mr["auroc"])
            cells.append("%.3f [%.2f, %.2f]" % (mr["auroc"], ci["lo"], ci["hi"]) if ci else "%.3f" % mr["auroc"])
        print("| %s | %.0f | %s | **%.3f** | %.3f |" % (m, pairs[0]["methods"][m]["nfe_per_image"], " | ".join(cells),
                                                       statistics.mean(aurocs), min(aurocs)))
    print()
    print("FPR@95TPR / ID accepted per pair:")
    print()
    for m in order:
        if m in pairs[0]["methods"]:
            print("- %s: %s" % (m, ", ".join("%.3f / %.3f" % (p["methods"][m]["fpr95"], p["methods"][m]["id_accepted"]) for p in pairs)))

what = sys.argv[2] if len(sys.argv) > 2 else "acceptance"
if what == "acceptance":
    acceptance()
else:
    suite(what)
