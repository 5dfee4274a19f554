#!/usr/bin/python3
"""Plots and a markdown summary of one `flowgauge run` file (results/README.md: the layout).

Usage: report.py results/NAME.h5  ->  results/NAME/*.png, results/NAME.md, a summary table on stdout.
Uses Debian's python3-h5py, python3-numpy and python3-matplotlib only. Every group and column past
/cells' identifying columns is optional (metrics not requested, a partial run): what is missing is
skipped, and said so in the markdown.
"""
import math
import os
import re
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import matplotlib.transforms as mtransforms  # noqa: E402
import numpy as np  # noqa: E402

ORDER_TOLERANCE = 0.15  # |fitted - declared| above this is flagged
MIN_FIT_POINTS = 3      # fits on fewer points are flagged
DPI = 110


# ---------------------------------------------------------------- reading

def text(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return text(v[()])
    return str(v)


def read_table(f, name):
    """A group of equal-length 1-D datasets -> {column: numpy array}; strings as str arrays. None if absent."""
    if name not in f or not isinstance(f[name], h5py.Group):
        return None
    out = {}
    for k, d in f[name].items():
        if not isinstance(d, h5py.Dataset) or d.ndim != 1:
            continue
        v = d[()]
        if v.dtype.kind in "SO":
            v = np.array([text(x) for x in v], dtype=object)
        out[k] = v
    if not out:
        return None
    n = {len(v) for v in out.values()}
    if len(n) != 1:
        raise SystemExit(f"report.py: /{name}: columns of different lengths {sorted(n)}")
    return out if n.pop() > 0 else None


def rows(t):
    return len(next(iter(t.values()))) if t else 0


def col(t, k, default=np.nan):
    """Column k, or a column of `default` when the file does not have it."""
    if t is None:
        return None
    if k in t:
        return t[k]
    return np.array([default] * rows(t), dtype=object if isinstance(default, str) else float)


def uniq(values):
    return list(dict.fromkeys(values))


def safe(s):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(s)).strip("-") or "x"


def fmt_e(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2e}"


def fmt_f(x, p=2):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{p}f}"


# ---------------------------------------------------------------- styling

MARKERS = "osD^vP<>X*hp"


class Styles:
    """One colour / marker / line style per solver, the same in every figure."""

    def __init__(self, solvers):
        cmap = plt.get_cmap("tab10" if len(solvers) <= 10 else "tab20")
        n = 10 if len(solvers) <= 10 else 20
        self.s = {}
        for i, s in enumerate(solvers):
            self.s[s] = dict(color=cmap(i % n), marker=MARKERS[i % len(MARKERS)],
                             linestyle=["-", "--", ":"][(i // n) % 3])

    def __call__(self, solver):
        return self.s[solver]


def symlog_ticks(ax, lin):
    """Ticks of a symlog axis: 0 and the decades outside the linear band (no crowding near 0)."""
    lo, hi = ax.get_ylim()
    ticks = [0.0]
    for sign, end in ((1, hi), (-1, -lo)):
        if end > lin:
            ticks += [sign * 10.0**e for e in range(math.ceil(math.log10(lin)), math.floor(math.log10(end)) + 1)]
    ax.set_yticks(sorted(ticks))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def panel_grid(n, w=5.4, h=4.2, ncols=None, extra_h=0.0):
    ncols = ncols or min(n, 2 if n == 4 else 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows + extra_h), squeeze=False,
                             constrained_layout=True)
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def suptitle(fig, text, fontsize=11):
    """Figure title wrapped to the figure's width (narrow one-panel figures clipped long titles)."""
    import textwrap
    width = max(30, int(fig.get_figwidth() * 100 / fontsize))
    fig.suptitle("\n".join(textwrap.wrap(text, width)), fontsize=fontsize)


def save(fig, outdir, name, made):
    path = os.path.join(outdir, name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    made.append(path)
    return path


# ---------------------------------------------------------------- the report

class Report:
    def __init__(self, h5path):
        self.h5path = h5path
        self.base = h5path[:-3] if h5path.endswith(".h5") else h5path
        self.outdir = self.base
        os.makedirs(self.outdir, exist_ok=True)
        self.plots = []     # (section, path)
        self.notes = []     # things skipped, said in the markdown
        self.f = h5py.File(h5path, "r")
        f = self.f
        self.attrs = {k: text(v) for k, v in f.attrs.items()}
        self.cells = read_table(f, "cells")
        self.orders = read_table(f, "orders")
        self.curv = read_table(f, "curvature")
        c = self.cells
        if c is not None:
            need = ["data", "schedule", "solver", "grid", "steps", "status", "nfe", "error_rms"]
            miss = [k for k in need if k not in c]
            if miss:
                raise SystemExit(f"report.py: {h5path}: /cells lacks {', '.join(miss)}; not a flowgauge run file?")
            self.ok = np.array([s == "ok" for s in c["status"]])
            self.failed = ~self.ok
            self.solvers = uniq(c["solver"])
            self.style = Styles(self.solvers)
            # figures: one per (data, grid); panels: one per schedule
            self.blocks = uniq(zip(c["data"], c["grid"]))
            self.schedules = uniq(c["schedule"])
        self.seeds = uniq(c["seed"]) if c is not None and "seed" in c else [0]

    # -- helpers over cells
    def sel(self, data, grid, schedule=None, solver=None, ok_only=True):
        c = self.cells
        m = (c["data"] == data) & (c["grid"] == grid)
        if schedule is not None:
            m &= c["schedule"] == schedule
        if solver is not None:
            m &= c["solver"] == solver
        if ok_only:
            m &= self.ok
        return m

    def series(self, mask, y, x="nfe"):
        """(x, y) per step count: median over seeds, ordered by step count; drops non-positive/non-finite y."""
        c = self.cells
        steps = c["steps"][mask]
        xs, ys = [], []
        for n in sorted(set(steps.tolist())):
            m = steps == n
            yv = np.asarray(col(c, y)[mask][m], dtype=float)
            xv = np.asarray(col(c, x)[mask][m], dtype=float)
            xs.append(np.median(xv))
            ys.append(np.median(yv) if np.all(np.isfinite(yv)) else np.nan)
        return np.array(xs), np.array(ys)

    def schedules_of(self, data, grid):
        m = self.sel(data, grid, ok_only=False)
        return [s for s in self.schedules if np.any(m & (self.cells["schedule"] == s))]

    def fit(self, data, grid, schedule, solver):
        """(fitted order averaged over seeds, declared, points min over seeds, error floor) or None."""
        o = self.orders
        if o is None:
            return None
        m = (o["data"] == data) & (o["grid"] == grid) & (o["schedule"] == schedule) & (o["solver"] == solver)
        if not np.any(m):
            return None
        fitted = np.asarray(col(o, "fitted_order")[m], dtype=float)
        fin = fitted[np.isfinite(fitted)]
        return dict(fitted=float(np.mean(fin)) if len(fin) else np.nan,
                    declared=float(np.asarray(col(o, "declared_order")[m], dtype=float)[0]),
                    points=int(np.min(np.asarray(col(o, "points", 0)[m], dtype=float))),
                    floor=float(np.nanmax(np.asarray(col(o, "error_floor")[m], dtype=float)))
                    if np.any(np.isfinite(np.asarray(col(o, "error_floor")[m], dtype=float))) else np.nan)

    def suffix(self, data, grid):
        return "" if len(self.blocks) == 1 else f"_{safe(data)}_{safe(grid)}"

    def where(self, data, grid):
        return f"data {data}, grid {grid}" + (f", median over {len(self.seeds)} seeds" if len(self.seeds) > 1 else "")

    def mark_failed(self, ax, data, grid, schedule, x="nfe"):
        c = self.cells
        m = self.sel(data, grid, schedule, ok_only=False) & self.failed
        if not np.any(m):
            return 0
        # a strip above the data for the markers (call after the axis scales are set)
        lo, hi = ax.get_ylim()
        if ax.get_yscale() == "log" and lo > 0:
            ax.set_ylim(lo, hi * (hi / lo) ** 0.15)
        else:
            ax.set_ylim(lo, hi + 0.15 * (hi - lo))
        tr = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        xv = np.asarray(col(c, x)[m], dtype=float)
        xv = xv[np.isfinite(xv) & (xv > 0)]
        ax.plot(xv, np.full(len(xv), 0.96), "x", color="red", ms=9, mew=2, transform=tr, clip_on=False, zorder=5)
        ax.text(0.99, 0.96, f"x: {int(np.sum(m))} failed cell(s), no error", transform=ax.transAxes, ha="right",
                va="center", color="red", fontsize=8)
        return int(np.sum(m))

    @staticmethod
    def floors(ax, ref_floor, fit_floor, ymin):
        """Error floors as horizontal lines when within a decade of the data, else as a note at the
        bottom (so that a reference 1e-11 does not squash errors of 1e-1..1e-6 into the top of the panel)."""
        below = []
        for v, lab, st in ((ref_floor, "reference error", dict(color="0.35", ls="--", lw=1)),
                           (fit_floor, "fit floor (100x ref)", dict(color="0.6", ls=":", lw=1.2))):
            if not (np.isfinite(v) and v > 0):
                continue
            if np.isfinite(ymin) and v < ymin / 10:
                below.append(f"{lab} {v:.1e}")
            else:
                ax.axhline(v, label=f"{lab} {v:.1e}", **st)
        if below:
            lo, hi = ax.get_ylim()  # room under the data for the note
            if lo > 0:
                ax.set_ylim(lo / (hi / lo) ** 0.12, hi)
            ax.text(0.02, 0.02, "below the axis: " + ", ".join(below), transform=ax.transAxes, fontsize=7.5,
                    color="0.3", ha="left", va="bottom")

    # -- plots
    def plot_error_vs(self, x, fname, xlabel, title):
        """Final-time RMS error against x (nfe or wall_seconds), one panel per schedule, one line per solver."""
        c = self.cells
        if x not in c:
            self.notes.append(f"no `{x}` column: {fname} skipped")
            return
        particles = int(c["particles"][0]) if "particles" in c else None
        for data, grid in self.blocks:
            scheds = self.schedules_of(data, grid)
            fig, axes = panel_grid(len(scheds), h=5.6)
            for ax, sch in zip(axes, scheds):
                ref_floor, fit_floor, ymin = np.nan, np.nan, np.inf
                for sv in self.solvers:
                    m = self.sel(data, grid, sch, sv)
                    if not np.any(m):
                        continue
                    xs, ys = self.series(m, "error_rms", x)
                    ok = np.isfinite(ys) & (ys > 0) & np.isfinite(xs) & (xs > 0)
                    fit = self.fit(data, grid, sch, sv)
                    label = sv
                    if x == "nfe" and fit is not None:
                        flag = " (!)" if np.isfinite(fit["fitted"]) and abs(fit["fitted"] - fit["declared"]) > ORDER_TOLERANCE else ""
                        label = f"{sv}  p={fmt_f(fit['fitted'])} [{fit['declared']:g}]{flag}"
                    if fit is not None and np.isfinite(fit["floor"]):
                        fit_floor = np.nanmax([fit_floor, fit["floor"]])
                    ax.plot(xs[ok], ys[ok], ms=4, lw=1.3, label=label, **self.style(sv))
                    if np.any(ok):
                        ymin = min(ymin, float(ys[ok].min()))
                    rf = np.asarray(col(c, "reference_error")[m], dtype=float)
                    if np.any(np.isfinite(rf)):
                        ref_floor = np.nanmax([ref_floor, np.nanmax(rf)])
                ax.set_xscale("log")
                ax.set_yscale("log")
                self.floors(ax, ref_floor, fit_floor if x == "nfe" else np.nan, ymin)
                self.mark_failed(ax, data, grid, sch, x)
                ax.set_xlabel(xlabel)
                ax.set_ylabel("RMS error |x - x_ref| at t_final (data units)")
                ax.set_title(f"schedule {sch}  ({grid})", fontsize=10)
                ax.grid(True, which="both", alpha=0.25)
                if x == "nfe":
                    nfes = sorted({int(v) for v in np.asarray(c["nfe"][self.sel(data, grid, sch, ok_only=False)], dtype=float)
                                   if np.isfinite(v) and v > 0})
                    if 1 <= len(nfes) <= 10:  # few NFE values: label them, not the log decades
                        ax.set_xticks(nfes, [str(v) for v in nfes])
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                labels = ax.get_legend_handles_labels()[1]
                ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                          ncol=2 if max(map(len, labels), default=0) <= 44 else 1, frameon=False,
                          title="solver  p=fitted order [declared], (!): differ by > 0.15" if x == "nfe" else None,
                          title_fontsize=7)
            pp = f", {particles} particles per cell" if particles else ""
            if x == "wall_seconds":
                pp += f"; {self.attrs.get('threads', '?')} worker threads share the cores"
            suptitle(fig, f"{title}: {self.where(data, grid)}{pp}")
            self.plots.append((fname, save(fig, self.outdir, f"{fname}{self.suffix(data, grid)}.png", [])))

    def plot_distribution(self):
        c = self.cells
        metrics = [(k, se, lab) for k, se, lab in
                   (("mmd2", "mmd2_se", "MMD^2 to the exact p (unbiased)"), ("mode_tv", "mode_tv_se", "mode-weight TV distance"))
                   if k in c]
        if not metrics:
            self.notes.append("no distribution columns (metric `distribution` not requested): distribution plots skipped")
            return
        all_metrics = metrics
        for data, grid in self.blocks:
            scheds = self.schedules_of(data, grid)
            # one-component data: the mode-weight TV is 0 by definition, no panel
            single = "components" in c and np.all(np.asarray(c["components"][self.sel(data, grid, ok_only=False)]) == 1)
            metrics = [x for x in all_metrics if not (single and x[0] == "mode_tv")]
            fig, axes = plt.subplots(len(metrics), len(scheds), figsize=(4.6 * len(scheds), 3.9 * len(metrics) + 1.2),
                                     squeeze=False, constrained_layout=True)
            for r, (k, se, lab) in enumerate(metrics):
                for j, sch in enumerate(scheds):
                    ax = axes[r, j]
                    ses = []
                    for sv in self.solvers:
                        m = self.sel(data, grid, sch, sv)
                        if not np.any(m):
                            continue
                        xs, ys = self.series(m, k)
                        _, es = self.series(m, se) if se in c else (xs, np.zeros_like(ys))
                        ok = np.isfinite(ys)
                        es = np.where(np.isfinite(es), es, 0.0)
                        ses += list(es[ok])
                        st = self.style(sv)
                        ax.errorbar(xs[ok], ys[ok], yerr=2 * es[ok], color=st["color"], marker=st["marker"],
                                    linestyle=st["linestyle"], ms=3.5, lw=1.1, capsize=2, elinewidth=0.8, label=sv)
                    ax.set_xscale("log")
                    pos = [v for v in ses if v > 0]
                    noise = 2 * float(np.median(pos)) if pos else np.nan
                    if k == "mmd2":
                        # symlog: the unbiased MMD^2 estimate can be negative; linear within the noise level
                        lin = noise if np.isfinite(noise) else 1e-6
                        ax.set_yscale("symlog", linthresh=lin)
                        symlog_ticks(ax, lin)
                        note = f"grey: |y| < 2 SE = {lin:.1e}, linear scale"
                    else:
                        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
                        note = f"grey: 2 SE = {noise:.1e}" if np.isfinite(noise) else ""
                    if np.isfinite(noise):
                        ax.axhspan(-noise, noise, color="0.9", zorder=0)
                    ax.axhline(0, color="0.4", lw=0.8)
                    self.mark_failed(ax, data, grid, sch)
                    ax.set_xlabel("model evaluations (NFE)")
                    ax.set_ylabel(f"{lab}\n(bars ±2 SE; {note})", fontsize=8)
                    ax.set_title(f"schedule {sch}  ({grid})", fontsize=10)
                    ax.grid(True, which="both", alpha=0.25)
            # outside, right of the top-right panel (constrained layout makes room for it)
            axes[0, -1].legend(*axes[0, 0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                               fontsize=8, frameon=False, title="solver", title_fontsize=8)
            suptitle(fig, f"Distribution error of the final samples against exact p: {self.where(data, grid)}")
            self.plots.append(("distribution", save(fig, self.outdir, f"distribution{self.suffix(data, grid)}.png", [])))

    # -- stochastic samplers (metrics `strong`, `exact_law`)
    def order_value(self, data, grid, schedule, solver, key):
        """Mean over seeds of an /orders column (NaN if absent)."""
        o = self.orders
        if o is None or key not in o:
            return np.nan
        m = (o["data"] == data) & (o["grid"] == grid) & (o["schedule"] == schedule) & (o["solver"] == solver)
        v = np.asarray(o[key][m], dtype=float)
        v = v[np.isfinite(v)]
        return float(np.mean(v)) if len(v) else np.nan

    def has_finite(self, data, grid, key):
        c = self.cells
        if key not in c:
            return False
        v = np.asarray(c[key][self.sel(data, grid)], dtype=float)
        return bool(np.any(np.isfinite(v) & (v > 0)))

    def plot_vs_nfe_panels(self, fname, title, panels, caption_key):
        """Log-log error against NFE for the columns in `panels` = [(column, floor column, order prefix, ylabel)],
        one figure per (data, grid) block where any is finite; one panel per (column, schedule)."""
        c = self.cells
        for data, grid in self.blocks:
            use = [p for p in panels if self.has_finite(data, grid, p[0])]
            if not use:
                continue
            scheds = self.schedules_of(data, grid)
            fig, axes = plt.subplots(1, len(use) * len(scheds), figsize=(5.6 * len(use) * len(scheds), 5.4), squeeze=False,
                                     constrained_layout=True)
            for j, ((k, floor_k, prefix, ylab), sch) in enumerate([(p, s_) for p in use for s_ in scheds]):
                ax = axes[0, j]
                ymin, floors = np.inf, []
                fitted = self.orders is not None and prefix + "_order" in self.orders
                for sv in self.solvers:
                    m = self.sel(data, grid, sch, sv)
                    if not np.any(m):
                        continue
                    xs, ys = self.series(m, k)
                    ok = np.isfinite(ys) & (ys > 0) & (xs > 0)
                    if not np.any(ok):
                        continue
                    ymin = min(ymin, float(ys[ok].min()))
                    st = self.style(sv)
                    lab = sv
                    if fitted:
                        p = self.order_value(data, grid, sch, sv, prefix + "_order")
                        r2 = self.order_value(data, grid, sch, sv, prefix + "_r2")
                        lab += f"  p={fmt_f(p)}" + (f" (R²={r2:.3f})" if np.isfinite(r2) else "")
                    ax.plot(xs[ok], ys[ok], color=st["color"], marker=st["marker"], linestyle=st["linestyle"], ms=4,
                            lw=1.3, label=lab)
                    if floor_k and floor_k in c:
                        _, fl = self.series(m, floor_k)
                        if np.any(np.isfinite(fl) & (fl > 0)):
                            floors.append((xs[ok], fl[ok], st["color"]))
                below = 0
                for xs, fl, color in floors:  # floors more than 2 decades under the data: counted, not drawn
                    if np.nanmax(fl) < ymin / 100:
                        below += 1
                    else:
                        ax.plot(xs, fl, color=color, lw=0.8, ls=":", alpha=0.8)
                if below:
                    ax.text(0.02, 0.02, f"{below} floor(s) > 2 decades below the data, not drawn", transform=ax.transAxes,
                            fontsize=7.5, color="0.3")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel("model evaluations (NFE)")
                ax.set_ylabel(ylab, fontsize=9)
                ax.set_title(f"schedule {sch}  ({grid})", fontsize=10)
                ax.grid(True, which="both", alpha=0.25)
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                if fitted or j == 0:
                    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, frameon=False,
                              title="solver  p = fitted order (points above the fit floor)" if fitted else "solver",
                              title_fontsize=7)
            suptitle(fig, f"{title}: {self.where(data, grid)}")
            self.plots.append((caption_key, save(fig, self.outdir, f"{fname}{self.suffix(data, grid)}.png", [])))

    def plot_strong(self):
        c = self.cells
        if "strong" not in c:
            if "family" in c and np.any(c["family"] == "stochastic"):
                self.notes.append("no strong-error columns (metric `strong` not requested): strong-error plots skipped")
            return
        n = int(np.nanmax(np.asarray(c["strong_particles"], dtype=float))) if "strong_particles" in c else 0
        self.plot_vs_nfe_panels(
            "strong_vs_nfe", f"Strong (pathwise) error of stochastic samplers, {n} particles",
            [("strong", "strong_ref_floor", "strong", "RMS |x - x_ref| (same solver, same path, 16x steps)"),
             ("strong_exact", "strong_exact_floor", "strong_exact", "RMS |x - x*| (exact limiting linear SDE, same path)")],
            "strong")

    def plot_exact_law(self):
        c = self.cells
        if "w2_exact" not in c:
            if "components" in c and np.any(np.asarray(c["components"]) == 1):
                self.notes.append("no exact-law columns (metric `exact_law` not requested): exact weak-error plots skipped")
            return
        self.plot_vs_nfe_panels(
            "exact_law", "Exact weak error (single-Gaussian data, exact output law, no Monte Carlo error)",
            [("w2_exact", None, "weak", "W2(output law, true law) at t_final"),
             ("kl_exact", None, "kl", "KL(output law || true law) at t_final")],
            "exact_law")

    def plot_marginal_drift(self):
        """Marginal preservation of the eta / gamma families: max over the path of W2(law_t, p_t) against the
        stochasticity knob (solvers run at >= 2 knob values; solid: the largest step count, dashed: a quarter
        of it), and the profile W2(law_t, p_t) along t at the largest step count."""
        c = self.cells
        if "marginal_w2_max" not in c:
            return
        knob = re.compile(r"[(,]\s*(eta|gamma)=([0-9.eE+-]+)")
        for data, grid in self.blocks:
            if not self.has_finite(data, grid, "marginal_w2_max"):
                continue
            scheds = self.schedules_of(data, grid)
            fig, axes = plt.subplots(2, len(scheds), figsize=(6.4 * len(scheds), 9.4), squeeze=False, constrained_layout=True)
            for j, sch in enumerate(scheds):
                ax, axp = axes[0, j], axes[1, j]
                m0 = self.sel(data, grid, sch)
                steps = sorted({int(v) for v in c["steps"][m0]})
                if not steps:
                    continue
                nmax = steps[-1]
                nq = max([n for n in steps if n <= nmax // 4], default=None)
                fam = {}  # solver name -> {steps: [(knob, w2, row)]}
                for i in np.nonzero(m0)[0]:
                    mk = knob.search(c["solver"][i])
                    w = float(c["marginal_w2_max"][i])
                    if mk is None or not np.isfinite(w):
                        continue
                    name = c["solver_name"][i] if "solver_name" in c else c["solver"][i].split("(")[0]
                    fam.setdefault((name, mk.group(1)), {}).setdefault(int(c["steps"][i]), []).append((float(mk.group(2)), w, i))
                family_colors = iter(["tab:green", "tab:purple", "tab:blue", "tab:red", "tab:orange", "tab:brown"] * 4)
                for (name, kn), by_n in sorted(fam.items()):
                    if len(by_n.get(nmax, [])) < 2:
                        continue
                    pts = sorted(by_n[nmax])
                    st = dict(self.style(c["solver"][pts[0][2]]), color=next(family_colors))
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], color=st["color"], marker=st["marker"], ms=5, lw=1.4,
                            label=f"{name} ({kn}), N = {nmax}")
                    if nq is not None and len(by_n.get(nq, [])) >= 2:
                        q = sorted(by_n[nq])
                        ax.plot([p[0] for p in q], [p[1] for p in q], color=st["color"], marker=st["marker"], ms=4, lw=1.0,
                                ls="--", alpha=0.7, label=f"{name} ({kn}), N = {nq}")
                    for val, w, i in pts:
                        g = self.f.get(f"cell_arrays/{int(col(c, 'cell_id')[i]):06d}")
                        if g is None or "marginal_w2_t" not in g or "t" not in g:
                            continue
                        wt, tt = g["marginal_w2_t"][()], g["t"][()]
                        ok = np.isfinite(wt) & (wt > 0)
                        axp.plot(tt[ok], wt[ok], color=st["color"], lw=1.0, alpha=0.35 + 0.65 * min(1.0, val / 1.5),
                                 label=c["solver"][i])
                ax.set_yscale("log")
                ax.set_xlabel("stochasticity knob (eta; gamma for sde_dpmpp_*)")
                ax.set_ylabel("max over the path of W2(law_t, p_t)", fontsize=9)
                ax.set_title(f"marginal drift against the knob: schedule {sch} ({grid})", fontsize=10)
                ax.grid(True, which="both", alpha=0.25)
                ax.legend(fontsize=7, frameon=False)
                axp.set_xscale("log")
                axp.set_yscale("log")
                axp.set_xlabel("t (native time; the sampler runs from right to left)")
                axp.set_ylabel(f"W2(law_t, p_t), N = {nmax}", fontsize=9)
                axp.set_title("along the path (darker: larger knob)", fontsize=10)
                axp.grid(True, which="both", alpha=0.25)
                axp.legend(fontsize=6.5, frameon=False, ncol=2)
            suptitle(fig, f"Marginal preservation (exact laws): {self.where(data, grid)}")
            self.plots.append(("marginal_drift", save(fig, self.outdir, f"marginal_drift{self.suffix(data, grid)}.png", [])))

    def stochastic_order_lines(self):
        """Markdown table of strong / weak orders of stochastic samplers (when fitted)."""
        o = self.orders
        if o is None or not any(k in o for k in ("strong_order", "weak_order")):
            return []
        keys = [(k, lab) for k, lab in (("strong_order", "strong (same solver)"), ("strong_exact_order", "strong (exact SDE)"),
                                        ("weak_order", "weak (exact W2)")) if k in o]
        L = ["## Strong and weak orders (stochastic samplers)", "",
             "Slopes of log error against log steps: strong against the same solver on the same Brownian path at 16x "
             "the steps and against the exact solution of the limiting linear SDE (single-Gaussian data); weak from the "
             "exact W2 of the output law. Points below each fit floor are left out; n/a: nothing to fit (no pathwise "
             "limit, mixture data, deterministic solver).", "",
             "| data | grid | schedule | solver | " + " | ".join(lab for _, lab in keys) + " |",
             "|---|---|---|---|" + "---|" * len(keys)]
        for i in range(rows(o)):
            vals = []
            for k, _ in keys:
                v = float(o[k][i])
                r2k = k.replace("_order", "_r2")
                pk = k.replace("_order", "_points")
                r2 = float(o[r2k][i]) if r2k in o else np.nan
                pts = int(o[pk][i]) if pk in o else 0
                vals.append("n/a" if not np.isfinite(v) else f"{v:.2f} (R² {r2:.3f}, {pts} pts)")
            if all(v == "n/a" for v in vals):
                continue
            L.append(f"| {o['data'][i]} | {o['grid'][i]} | {o['schedule'][i]} | `{o['solver'][i]}` | " + " | ".join(vals) + " |")
        return L + [""]

    def plot_likelihood(self):
        """Likelihood error (nats, mean |log p - closed form| over points) against the likelihood NFE."""
        c = self.cells
        if "lik_mean_abs" not in c:
            return
        for data, grid in self.blocks:
            scheds = self.schedules_of(data, grid)
            fig, axes = plt.subplots(1, len(scheds), figsize=(4.8 * len(scheds), 4.4), squeeze=False,
                                     constrained_layout=True)
            any_line = False
            for j, sch in enumerate(scheds):
                ax = axes[0, j]
                for sv in self.solvers:
                    m = self.sel(data, grid, sch, sv)
                    if not np.any(m):
                        continue
                    xs, ys = self.series(m, "lik_mean_abs", x="lik_nfe")
                    ok = np.isfinite(ys) & (ys > 0) & (xs > 0)
                    if not np.any(ok):
                        continue
                    st = self.style(sv)
                    ax.loglog(xs[ok], ys[ok], color=st["color"], marker=st["marker"], linestyle=st["linestyle"],
                              ms=3.5, lw=1.1, label=sv)
                    any_line = True
                ax.set_xlabel("model evaluations of the likelihood solve (NFE)")
                ax.set_ylabel("mean |log p - exact log p| (nats)")
                ax.set_title(f"schedule {sch}  ({grid})", fontsize=10)
                ax.grid(True, which="both", alpha=0.25)
            if not any_line:
                plt.close(fig)
                continue
            axes[0, -1].legend(*axes[0, 0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                               fontsize=8, frameon=False, title="solver", title_fontsize=8)
            fig.suptitle(f"Likelihood error through the divergence-augmented PF-ODE: {self.where(data, grid)}", fontsize=11)
            self.plots.append(("likelihood", save(fig, self.outdir, f"likelihood{self.suffix(data, grid)}.png", [])))

    def plot_curvature(self):
        t = self.curv
        if t is None:
            self.notes.append("no /curvature (metric `curvature` not requested)")
            return
        coords = uniq(t["coordinates"])
        cmap = plt.get_cmap("tab10")
        profiles = self.f.get("curvature_profiles")
        for data in uniq(t["data"]):
            md = t["data"] == data
            scheds = uniq(t["schedule"][md])
            # bars: straightness (log) and chord ratio per schedule x coordinates
            qty = [(k, lab, scale) for k, lab, scale in
                   (("straightness", "straightness S = ∫E|D - Ẋ|² ds\n(coordinate units², log)", "log"),
                    ("chord_ratio", "chord ratio |D| / path length\n(1 = straight)", "linear")) if k in t]
            if qty:
                fig, axes = plt.subplots(1, len(qty), figsize=(max(6.5, 1.5 * len(scheds) + 2.5) * len(qty), 4.6),
                                         squeeze=False, constrained_layout=True)
                w = 0.8 / len(coords)
                for ax, (k, lab, scale) in zip(axes[0], qty):
                    for ci, cn in enumerate(coords):
                        v = []
                        for sch in scheds:
                            m = md & (t["schedule"] == sch) & (t["coordinates"] == cn)
                            v.append(float(np.asarray(t[k][m], dtype=float)[0]) if np.any(m) else np.nan)
                        xpos = np.arange(len(scheds)) + (ci - (len(coords) - 1) / 2) * w
                        ax.bar(xpos, v, w, color=cmap(ci), label=f"{cn} coordinates")
                    ax.set_xticks(np.arange(len(scheds)), scheds)
                    ax.set_xlabel("schedule")
                    ax.set_ylabel(lab)
                    ax.set_yscale(scale)
                    if k == "chord_ratio":
                        ax.set_ylim(0, 1.08)
                        ax.axhline(1, color="0.4", lw=0.8)
                    ax.grid(True, axis="y", which="both", alpha=0.25)
                axes[0, -1].legend(*axes[0, 0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                   fontsize=8, frameon=False)
                fig.suptitle(f"Geometry of exact PF-ODE paths, data {data} (logsnr grid, "
                             f"{int(t['nodes'][md][0]) if 'nodes' in t else '?'} nodes)", fontsize=11)
                self.plots.append(("curvature", save(fig, self.outdir, f"curvature_{safe(data)}.png", [])))
            # kappa(s) profiles: one panel per schedule, one line per coordinate system
            if profiles is None:
                continue
            fig, axes = panel_grid(len(scheds), w=4.8, h=3.9, ncols=min(len(scheds), 3))
            for ax, sch in zip(axes, scheds):
                for ci, cn in enumerate(coords):
                    idx = np.nonzero(md & (t["schedule"] == sch) & (t["coordinates"] == cn))[0]
                    if not len(idx) or f"{idx[0]:04d}" not in profiles:
                        continue
                    g = profiles[f"{idx[0]:04d}"]
                    s, kap = g["s"][()], g["kappa"][()]
                    ok = np.isfinite(kap) & (kap > 0)
                    ax.plot(s[ok], kap[ok], color=cmap(ci), lw=1.2, label=cn)
                ax.set_yscale("log")
                ax.set_xlim(0, 1)
                ax.set_xlabel("s: normalised coordinate time (0 = noise, 1 = data)")
                ax.set_ylabel("mean curvature κ(s) (1 / coordinate units)")
                ax.set_title(f"schedule {sch}", fontsize=10)
                ax.grid(True, which="both", alpha=0.25)
                ax.legend(fontsize=8, title="coordinates", title_fontsize=8, loc="best")
            fig.suptitle(f"Curvature along exact PF-ODE paths, data {data}", fontsize=11)
            self.plots.append(("kappa", save(fig, self.outdir, f"kappa_{safe(data)}.png", [])))

    def plot_trajectories(self):
        tr = self.f.get("trajectories")
        dens = self.f.get("density")
        if tr is None and dens is None:
            return
        datas = uniq(list(tr.keys() if tr is not None else []) + list(dens.keys() if dens is not None else []))
        first_sched = self.schedules[0] if self.cells is not None else None
        for data in datas:
            scheds = list(tr[data].keys()) if tr is not None and data in tr else []
            n = max(1, len(scheds))
            fig, axes = panel_grid(n, w=4.3, h=4.3, ncols=min(n, 3))
            axis = dens[data]["axis"][()] if dens is not None and data in dens else None
            for ax, sch in zip(axes, scheds or [None]):
                if axis is not None:
                    p = np.exp(dens[data]["logp"][()])
                    ax.contourf(axis, axis, p, levels=20, cmap="Blues")
                    ax.contour(axis, axis, p, levels=8, colors="steelblue", linewidths=0.4)
                if sch is not None:
                    x = tr[data][sch]["x"][()]  # (T, n, d)
                    for j in range(x.shape[1]):
                        ax.plot(x[:, j, 0], x[:, j, 1], color="tab:red", lw=0.5, alpha=0.6)
                    ax.plot(x[-1, :, 0], x[-1, :, 1], ".", color="k", ms=3, label="end (data side)")
                    ax.set_title(f"schedule {sch}: {x.shape[1]} reference paths", fontsize=10)
                    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
                else:
                    ax.set_title("density at the data end", fontsize=10)
                if axis is not None:
                    ax.set_xlim(axis[0], axis[-1])
                    ax.set_ylim(axis[0], axis[-1])
                ax.set_aspect("equal")
                ax.set_xlabel("x1")
                ax.set_ylabel("x2")
            note = (f"contours: exact p at t_lo of schedule {first_sched}" if axis is not None else "no density lattice")
            if scheds:
                fig.suptitle(f"Exact PF-ODE paths from the noise end, data {data}\n({note}; paths start outside the "
                             f"view where the prior is wider)", fontsize=10)
            else:
                fig.suptitle(f"Data {data} ({note}; no reference paths: metric `curvature` not requested)", fontsize=10)
            self.plots.append(("trajectories", save(fig, self.outdir, f"trajectories_{safe(data)}.png", [])))

    # -- tables
    def order_rows(self):
        o = self.orders
        if o is None:
            return []
        out = []
        for i in range(rows(o)):
            fitted = float(col(o, "fitted_order")[i])
            declared = float(col(o, "declared_order")[i])
            pts = col(o, "points", 0)[i]
            pts = int(pts) if np.isfinite(float(pts)) else 0
            flags = []
            if not np.isfinite(fitted):
                flags.append("no fit")
            elif abs(fitted - declared) > ORDER_TOLERANCE:
                flags.append(f"off by {fitted - declared:+.2f}")
            if pts < MIN_FIT_POINTS:
                flags.append(f"{pts} points")
            out.append(dict(data=o["data"][i], schedule=o["schedule"][i], grid=o["grid"][i], solver=o["solver"][i],
                            seed=col(o, "seed", 0)[i], declared=declared, fitted=fitted,
                            r2=float(col(o, "r2")[i]), points=pts, flags=flags))
        return out

    def best_per_budget(self, data, grid):
        """{budget: {schedule: (solver, error)}}: lowest error over ok cells with nfe <= budget."""
        c = self.cells
        m0 = self.sel(data, grid)
        nfe = np.asarray(c["nfe"][m0], dtype=float)
        if not len(nfe):
            return [], {}
        lo, hi = nfe.min(), nfe.max()
        budgets = [b for k in range(0, 8) for b in (1 * 10**k, 2 * 10**k, 5 * 10**k) if lo <= b <= hi]
        budgets = sorted(set(budgets + [int(hi)]))
        out = {}
        for b in budgets:
            out[b] = {}
            for sch in self.schedules_of(data, grid):
                m = self.sel(data, grid, sch) & (np.asarray(c["nfe"], dtype=float) <= b)
                err = np.asarray(c["error_rms"], dtype=float)
                m &= np.isfinite(err)
                if np.any(m):
                    i = np.nonzero(m)[0][np.argmin(err[m])]
                    out[b][sch] = (c["solver"][i], err[i], int(c["nfe"][i]))
        return budgets, out

    def summary_lines(self):
        """Per (data, grid): per solver, error at the largest NFE and fitted order, per schedule (stdout)."""
        c = self.cells
        lines = []
        for data, grid in self.blocks:
            scheds = self.schedules_of(data, grid)
            w = max(len(s) for s in self.solvers) + 2
            lines.append(f"{data}, {grid}: RMS error at the largest NFE (NFE) / fitted order p"
                         + ("; stochastic samplers: s = strong error, p = strong order" if "strong" in c else ""))
            lines.append("solver".ljust(w) + "".join(s[:24].ljust(26) for s in scheds))
            for sv in self.solvers:
                cells_ = []
                for sch in scheds:
                    m = self.sel(data, grid, sch, sv, ok_only=False)
                    if not np.any(m):
                        cells_.append("-".ljust(26))
                        continue
                    mk = m & self.ok
                    # stochastic samplers: the strong error and order (error_rms is the distance to the PF-ODE path)
                    strong = "strong" in c and "family" in c and np.any(c["family"][m] == "stochastic")
                    key = "strong" if strong else "error_rms"
                    if np.any(mk):
                        nfe = np.asarray(c["nfe"][mk], dtype=float)
                        i = np.nonzero(mk)[0][np.argmax(nfe)]
                        e = f"{'s ' if strong else ''}{fmt_e(float(c[key][i]))} ({int(nfe.max())})"
                    else:
                        e = "failed"
                    if strong:
                        p = fmt_f(self.order_value(data, grid, sch, sv, "strong_order"))
                    else:
                        fit = self.fit(data, grid, sch, sv)
                        p = fmt_f(fit["fitted"]) if fit else "n/a"
                    cells_.append(f"{e} p={p}".ljust(26))
                lines.append(sv.ljust(w) + "".join(cells_))
            lines.append("")
        return lines

    # -- markdown
    def markdown(self):
        a = self.attrs
        rel = os.path.dirname(self.base) or "."
        L = [f"# flowgauge report: {a.get('experiment_name', os.path.basename(self.base))}", ""]
        st = a.get("status", "?")
        L += ["| | |", "|---|---|",
              f"| file | `{self.h5path}` |",
              f"| experiment | `{a.get('experiment_name', '?')}` from `{a.get('experiment_file', '?')}` |",
              f"| status | **{st}**: {a.get('cells_done', '?')} of {a.get('cells_total', '?')} cells done |",
              f"| flowgauge | {a.get('flowgauge_version', '?')}, commit `{a.get('git_commit', '?')}`, "
              f"{a.get('build_type', '?')} build, {a.get('compiler', '?')} |",
              f"| host | {a.get('host', '?')}, {a.get('threads', '?')} threads |",
              f"| time | {a.get('start_time', '?')} to {a.get('end_time', '?')} |",
              f"| seeds | {a.get('seeds', '?')} |", ""]
        if st != "complete":
            L += [f"> **Partial run**: only {a.get('cells_done', '?')} of {a.get('cells_total', '?')} cells are in this "
                  "file; fits and comparisons below cover those cells only.", ""]
        c = self.cells
        if c is None:
            L += ["No finished cells in this file yet.", ""]
            return L
        nf = int(np.sum(self.failed))
        L += [f"{rows(c)} cells: {rows(c) - nf} ok, {nf} failed. Errors are RMS over particles of |x - x_ref| at the "
              "final time against a tight-tolerance reference from the same starting points; only `ok` cells are "
              "plotted and fitted.", ""]
        if nf:
            L += ["## Failed cells", "", "| cell | data | schedule | solver | grid | steps | failure |",
                  "|---|---|---|---|---|---|---|"]
            for i in np.nonzero(self.failed)[0]:
                L.append(f"| {col(c, 'cell_id', i)[i]} | {c['data'][i]} | {c['schedule'][i]} | `{c['solver'][i]}` | "
                         f"{c['grid'][i]} | {c['steps'][i]} | {col(c, 'failure', '')[i]} |")
            L.append("")
        # orders
        orows = self.order_rows()
        L += ["## Fitted against declared order", ""]
        if not orows:
            L += ["No /orders in this file.", ""]
        else:
            nflag = sum(1 for r in orows if r["flags"])
            L += [f"Slope of log error against log steps, fitted over the points at least 100x above the reference "
                  f"error. **Bold**: |fitted - declared| > {ORDER_TOLERANCE}; also flagged: fewer than "
                  f"{MIN_FIT_POINTS} points, no fit. {nflag} of {len(orows)} fits flagged"
                  + (f" (the mean over {len(self.seeds)} seeds is shown)." if len(self.seeds) > 1 else "."), ""]
            for data, grid in uniq((r["data"], r["grid"]) for r in orows):
                rs = [r for r in orows if r["data"] == data and r["grid"] == grid]
                scheds = [x for x in self.schedules if any(r["schedule"] == x for r in rs)] or uniq(r["schedule"] for r in rs)
                solvers = [x for x in self.solvers if any(r["solver"] == x for r in rs)] or uniq(r["solver"] for r in rs)
                L += [f"{data}, {grid}:", "", "| solver | declared | " + " | ".join(scheds) + " |",
                      "|---|---|" + "---|" * len(scheds)]
                for sv in solvers:
                    cells_, decl = [], ""
                    for sch in scheds:
                        m = [r for r in rs if r["solver"] == sv and r["schedule"] == sch]
                        if not m:
                            cells_.append("-")
                            continue
                        decl = f"{m[0]['declared']:g}"
                        fit = [r["fitted"] for r in m if np.isfinite(r["fitted"])]
                        v = fmt_f(float(np.mean(fit))) if fit else "no fit"
                        few = min(r["points"] for r in m)
                        v += f" ({few} pts)" if few < MIN_FIT_POINTS else ""
                        cells_.append(f"**{v}**" if any(r["flags"] for r in m) else v)
                    L.append(f"| `{sv}` | {decl} | " + " | ".join(cells_) + " |")
                L.append("")
            L += ["<details><summary>every fit (R², points, flags)</summary>", "",
                  "| data | grid | schedule | solver | seed | declared | fitted | R² | points | flag |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
            rank_s = {x: i for i, x in enumerate(self.schedules)} if self.cells is not None else {}
            rank_v = {x: i for i, x in enumerate(self.solvers)} if self.cells is not None else {}
            for r in sorted(orows, key=lambda r: (r["data"], r["grid"], rank_s.get(r["schedule"], 0),
                                                  rank_v.get(r["solver"], 0), str(r["seed"]))):
                fl = ", ".join(r["flags"])
                L.append(f"| {r['data']} | {r['grid']} | {r['schedule']} | `{r['solver']}` | {r['seed']} | "
                         f"{r['declared']:g} | {fmt_f(r['fitted'])} | {fmt_f(r['r2'], 3)} | {r['points']} | "
                         f"{'**' + fl + '**' if fl else ''} |")
            L += ["", "</details>", ""]
        # best per budget
        L += ["## Best solver per NFE budget", "",
              "Lowest final RMS error among ok cells using at most the budget's model evaluations "
              "(solver, error, NFE used).", ""]
        for data, grid in self.blocks:
            budgets, best = self.best_per_budget(data, grid)
            scheds = self.schedules_of(data, grid)
            L += [f"{data}, {grid}:", "", "| NFE budget | " + " | ".join(scheds) + " |", "|---|" + "---|" * len(scheds)]
            for b in budgets:
                L.append(f"| ≤ {b} | " + " | ".join(
                    f"`{best[b][s][0]}` {best[b][s][1]:.1e} ({best[b][s][2]})" if s in best[b] else "-" for s in scheds) + " |")
            L.append("")
        # curvature
        t = self.curv
        if t is not None:
            L += ["## Path geometry (exact PF-ODE paths)", "",
                  "| data | schedule | coordinates | straightness | kinetic energy | chord ratio | turning (rad) |",
                  "|---|---|---|---|---|---|---|"]
            for i in range(rows(t)):
                L.append(f"| {t['data'][i]} | {t['schedule'][i]} | {t['coordinates'][i]} | "
                         f"{fmt_e(float(col(t, 'straightness')[i]))} | {fmt_e(float(col(t, 'kinetic_energy')[i]))} | "
                         f"{fmt_f(float(col(t, 'chord_ratio')[i]), 3)} | {fmt_f(float(col(t, 'turning')[i]), 3)} |")
            L.append("")
        return L

    def run(self):
        if self.cells is not None:
            self.plot_error_vs("nfe", "error_vs_nfe", "model evaluations (NFE)", "Final error against evaluations")
            self.plot_error_vs("wall_seconds", "work_precision", "wall time per cell [s]", "Work-precision")
            self.plot_distribution()
            self.plot_likelihood()
            self.plot_strong()
            self.plot_exact_law()
            self.plot_marginal_drift()
        self.plot_curvature()
        self.plot_trajectories()
        L = self.markdown()
        L += self.stochastic_order_lines()
        L += ["## Plots", ""]
        rel = os.path.dirname(self.base) or "."
        captions = {"error_vs_nfe": "Final RMS error against model evaluations, log-log, one panel per schedule; legend: "
                                    "fitted order p (over steps) and declared order, (!) where they differ by more than "
                                    f"{ORDER_TOLERANCE}; dashed: the reference's own error, dotted: the fit floor (100x); "
                                    "red x: failed cells.",
                    "work_precision": "Final RMS error against wall time of the whole cell (all particles), log-log.",
                    "distribution": "MMD² to the exact distribution and mode-weight TV against NFE, bars ±2 standard "
                                    "errors; grey band: the statistical noise level.",
                    "curvature": "Straightness (log) and chord ratio of the exact PF-ODE paths per schedule and "
                                 "coordinate system (straightness is in each coordinate system's own units).",
                    "kappa": "Mean curvature κ(s) along the exact paths, one panel per schedule, one line per "
                             "coordinate system.",
                    "trajectories": "Exact reference paths (red) over the exact density at the data end (blue), "
                                    "end points black.",
                    "strong": "Strong (pathwise) error of the stochastic samplers against NFE, log-log: left against the "
                              "same solver on the same Brownian paths at 16x the largest step count, right (single-Gaussian "
                              "data) against the exact solution of the limiting linear SDE; dotted: each reference's floor "
                              "(its distance to the same reference at 8x), p: fitted strong order.",
                    "exact_law": "Exact weak error on single-Gaussian data: W2 and KL between the sampler's exact output law "
                                 "(propagated through the step code) and the true law, against NFE; p: fitted order.",
                    "marginal_drift": "Marginal preservation: top, the largest W2 between the exact law and the true "
                                      "marginal p_t over the path against eta (gamma), solid at the largest step count, "
                                      "dashed at a quarter of it; bottom, W2(law_t, p_t) along t. The eta family "
                                      "(1 + eta^2)/2 has discretization error only (it falls with the steps); the "
                                      "(1 + eta)/2 variant drifts for eta not in {0, 1} at any step count."}
        for sec, p in self.plots:
            r = os.path.relpath(p, rel)
            L += [f"### [{os.path.basename(p)}]({r})", "", captions.get(sec, ""), "", f"![{os.path.basename(p)}]({r})", ""]
        if self.notes:
            L += ["## Not in this file", ""] + [f"- {n}" for n in self.notes] + [""]
        md = self.base + ".md"
        with open(md, "w") as fh:
            fh.write("\n".join(L))
        if self.cells is not None:
            print("\n".join(self.summary_lines()))
        print(f"report: {md} and {len(self.plots)} plots in {self.outdir}/"
              + ("" if self.attrs.get("status") == "complete" else
                 f" (partial run: {self.attrs.get('cells_done', '?')}/{self.attrs.get('cells_total', '?')} cells)"))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py FILE.h5")
    path = sys.argv[1]
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        sys.exit(f"report.py: {path}: cannot open as HDF5 ({e})")
    with f:
        if "plan_hash" not in f.attrs:
            sys.exit(f"report.py: {path}: not a flowgauge run file (no plan_hash attribute)")
    r = Report(path)
    try:
        r.run()
    finally:
        r.f.close()


if __name__ == "__main__":
    main()
