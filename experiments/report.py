#!/usr/bin/python3
"""Plots and a markdown summary from a flowgauge demo HDF5 file.

Usage: report.py results/demo.h5  ->  results/demo/*.png and results/demo.md
Uses Debian's python3-h5py and python3-matplotlib only.
"""
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def table(f, group):
    g = f[group]
    out = {}
    for k in g:
        v = g[k][()]
        out[k] = [x.decode() for x in v] if v.dtype.kind == "S" else v
    return out


def density_plot(f, outdir):
    if "density_logp" not in f:
        return None
    axis = f["density_axis"][()]
    grids = f["density_logp"][()]
    sig = f["density_sigma"][()]
    fig, axes = plt.subplots(1, len(sig), figsize=(4.2 * len(sig), 4.2), constrained_layout=True)
    traj = f["reference_trajectories"][()] if "reference_trajectories" in f else None  # (T, N, 2)
    for ax, g, s in zip(axes, grids, sig):
        ax.contourf(axis, axis, np.exp(g), levels=30, cmap="Blues")
        ax.set_title(f"p_t (edm schedule), sigma = {s:g}", fontsize=10)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_aspect("equal")
    if traj is not None:
        ax = axes[0]
        for j in range(traj.shape[1]):
            ax.plot(traj[:, j, 0], traj[:, j, 1], color="tab:red", lw=0.6, alpha=0.7)
        ax.plot(traj[-1, :, 0], traj[-1, :, 1], ".", color="k", ms=3, label="x at sigma = 0.002")
        ax.set_xlim(axis[0], axis[-1])
        ax.set_ylim(axis[0], axis[-1])
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title("PF-ODE trajectories from sigma = 80 over p at sigma = 0.002", fontsize=10)
    path = os.path.join(outdir, "density_trajectories.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def error_plot(f, outdir):
    t = table(f, "solvers")
    o = table(f, "orders")
    fig, ax = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    solvers = list(dict.fromkeys(t["solver"]))
    for s in solvers:
        idx = [i for i, x in enumerate(t["solver"]) if x == s]
        nfe = np.array([t["nfe"][i] for i in idx])
        err = np.array([t["rms_error"][i] for i in idx])
        sec = np.array([t["seconds"][i] for i in idx])
        k = o["solver"].index(s)
        lbl = f"{s} (fit {o['fitted_order'][k]:.2f}, declared {o['declared_order'][k]:g})"
        ax[0].loglog(nfe, err, "o-", ms=3, label=lbl)
        ax[1].loglog(sec * 1e3, err, "o-", ms=3, label=s)
    ax[0].set_xlabel("model evaluations (NFE)")
    ax[0].set_ylabel("RMS error vs reference at sigma = 0.002")
    ax[0].set_title("Error against evaluations (edm schedule, edm grid)")
    ax[0].legend(fontsize=7)
    ax[0].grid(True, which="both", alpha=0.3)
    ax[1].set_xlabel("wall time per sample of 512 particles [ms]")
    ax[1].set_ylabel("RMS error")
    ax[1].set_title("Work-precision")
    ax[1].grid(True, which="both", alpha=0.3)
    path = os.path.join(outdir, "error_vs_nfe.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py FILE.h5")
    h5 = sys.argv[1]
    base = os.path.splitext(h5)[0]
    outdir = base
    os.makedirs(outdir, exist_ok=True)
    with h5py.File(h5, "r") as f:
        plots = [p for p in (density_plot(f, outdir), error_plot(f, outdir)) if p]
        st = table(f, "stein")
        o = table(f, "orders")
        lines = [f"# flowgauge report: {os.path.basename(h5)}", "",
                 f"flowgauge {f.attrs['flowgauge_version']} (commit {f.attrs['git_commit']}), "
                 f"mixture `{f.attrs['mixture_file']}`, started {f.attrs['start_time']}.", "",
                 "## Exact world: Stein identities on exact draws from p_t", "",
                 "| schedule | t | lambda | E log p | max z of E[s] | z of E[tr J + |s|^2] |", "|---|---|---|---|---|---|"]
        for i in range(len(st["schedule"])):
            lines.append(f"| {st['schedule'][i]} | {st['t'][i]:.4g} | {st['lambda'][i]:.2f} | {st['mean_logp'][i]:.4f} | "
                         f"{st['score_mean_max_z'][i]:.2f} | {st['stein2_z'][i]:.2f} |")
        lines += ["", "## Samplers: fitted against declared order", "",
                  "| solver | declared | fitted | R^2 | RMS error at 18 steps |", "|---|---|---|---|---|"]
        for i in range(len(o["solver"])):
            lines.append(f"| {o['solver'][i]} | {o['declared_order'][i]:g} | {o['fitted_order'][i]:.2f} | "
                         f"{o['r2'][i]:.3f} | {o['rms_error_at_18_steps'][i]:.3e} |")
        lines += [""] + [f"![{os.path.basename(p)}]({os.path.relpath(p, os.path.dirname(h5) or '.')})" for p in plots]
    md = base + ".md"
    with open(md, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"report: {md} and {len(plots)} plots in {outdir}/")


if __name__ == "__main__":
    main()
