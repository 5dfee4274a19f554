#!/usr/bin/python3
"""flowgauge against the Python stack on the same machine, the same problems and the same inputs.

  torch:  the performance issue's whole-sampler cases. Baseline: a float64 PyTorch denoiser for the
          Gaussian mixture (eigen-factors computed once, two GEMMs per call: whitening of all K
          components in one (N x d)(d x Kd) product, and the responsibility-weighted posterior means
          in one (N x Kd)(Kd x d) product) driving k-diffusion's `sample_heun` / `sample_euler`
          loops, written out here (k-diffusion is not a Debian package). torch.set_num_threads(2).
  dop853: 1000 2-D PF-ODE trajectories at rtol = 1e-10 as ONE system with scipy's DOP853, against
          flowgauge's batched adaptive reference (dopri5 and rkf78; same coordinates: x against lambda).

Both sides get the same mixture file, the same sigma grid and the same starting points (HDF5),
the outputs are compared, and each side's time covers the sampling only (flowgauge: the
`sample_seconds` attribute; Python: perf_counter around the loop, best of --repeat after a warm-up).
Not part of the tests or CI (needs python3-torch: apt-get install python3-torch).

The PyTorch side runs with glibc's malloc told to keep freed memory (no mmap/munmap of every large
temporary: each call would otherwise fault fresh zeroed pages in, which made (b) ~7x and (c) ~13x slower
on an AMD EPYC, mostly system time) and one OpenBLAS thread (torch's own 2 threads plus OpenBLAS's
oversubscribe the cores). `--plain` runs it with neither, as a default PyTorch install would.

  /usr/bin/python3 experiments/bench/compare_python.py torch  [--flowgauge build/release/flowgauge]
  /usr/bin/python3 experiments/bench/compare_python.py dop853
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
# The PyTorch baseline's process settings (see the docstring); read by glibc and OpenBLAS at start-up.
TUNED = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184",
         "OPENBLAS_NUM_THREADS": "1"}


def make_mixture(d, K, seed):
    """Means 2 n, covariances A A^T / d + 0.05 I (as bench_solvers.cpp), equal weights."""
    g = np.random.default_rng(seed)
    means = 2 * g.standard_normal((K, d))
    covs = []
    for _ in range(K):
        A = g.standard_normal((d, d))
        covs.append(A @ A.T / d + 0.05 * np.eye(d))
    return np.full(K, 1.0 / K), means, np.array(covs)


def write_mixture_toml(path, w, means, covs):
    fmt = lambda v: "[" + ", ".join(repr(float(x)) for x in v) + "]"
    with open(path, "w") as f:
        f.write(f'name = "bench"\ndim = {means.shape[1]}\n')
        for k in range(len(w)):
            f.write(f"\n[[component]]\nweight = {w[k]!r}\nmean = {fmt(means[k])}\n")
            f.write("cov = [" + ", ".join(fmt(r) for r in covs[k]) + "]\n")


def karras_sigmas(n, final_zero):
    """k-diffusion get_sigmas_karras (EDM eq. 5), optionally without the appended 0."""
    ramp = np.linspace(0, 1, n)
    lo, hi = SIGMA_MIN ** (1 / RHO), SIGMA_MAX ** (1 / RHO)
    s = (hi + ramp * (lo - hi)) ** RHO
    return np.append(s, 0.0) if final_zero else s


class Denoiser:
    """E[x0 | x = x0 + sigma eps] for the mixture; rows are points (PyTorch / NumPy layout).

    Tuned for the library: all K components live side by side in N x (K d) arrays, so every
    reduction over d or broadcast over d is a GEMM with a 0/1 block matrix (reductions over a
    trailing axis of length 2 are slow in both libraries), and temporaries are updated in place."""

    def __init__(self, lib, w, means, covs):
        s, U = np.linalg.eigh(covs)  # once: Sigma_k = U_k diag(s_k) U_k^T
        K, d = means.shape
        UT = U.transpose(0, 2, 1).reshape(K * d, d)  # stacked U_k^T
        arrays = dict(UTt=np.ascontiguousarray(UT.T), UT=UT, m=np.einsum("kji,kj->ki", U, means).ravel(),
                      s=s.ravel(), logw=np.log(w), S=np.kron(np.eye(K), np.ones((d, 1))))  # S: (K d) x K
        if lib == "torch":
            import torch

            arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
            self.log, self.softmax = torch.log, lambda a: torch.softmax(a, dim=-1)
        else:
            self.log = np.log
            self.softmax = lambda a: np.exp(a - np.logaddexp.reduce(a, axis=-1, keepdims=True))
        self.__dict__.update(arrays)

    def __call__(self, x, sigma):
        z = x @ self.UTt  # GEMM 1: U_k^T x for all k, N x (K d)
        z -= self.m  # U_k^T (x - mu_k)
        v = self.s + sigma * sigma  # eigenvalues of Sigma_k + sigma^2 I
        logdet = self.log(v) @ self.S
        q = (z * z / v) @ self.S  # N x K quadratic forms
        r = self.softmax(self.logw - 0.5 * (q + logdet))
        z *= self.s / v
        z += self.m  # U_k^T E[x0 | x, k]
        z *= r @ self.S.T  # times r_k
        return z @ self.UT  # GEMM 2: sum_k U_k (...)


def sample_heun(model, x, sigmas):  # k-diffusion sample_heun, s_churn = 0 (EDM Algorithm 2)
    for i in range(len(sigmas) - 1):
        d = (x - model(x, sigmas[i])) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - model(x2, sigmas[i + 1])) / sigmas[i + 1]
            x = x + (d + d2) / 2 * dt
    return x


def sample_euler(model, x, sigmas):  # k-diffusion sample_euler, s_churn = 0
    for i in range(len(sigmas) - 1):
        d = (x - model(x, sigmas[i])) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def run_flowgauge(exe, tmp, solver, threads, extra=()):
    out = os.path.join(tmp, "fg.h5")
    cmd = [exe, "sample", "--mixture", os.path.join(tmp, "mix.toml"), "--schedule", "edm", "--solver", solver,
           "--grid-file", os.path.join(tmp, "in.h5"), "--grid-dataset", "sigma", "--grid-in", "sigma",
           "--input", os.path.join(tmp, "in.h5"), "--output", out, "--threads", str(threads), *extra]
    env = {k: v for k, v in os.environ.items() if k not in TUNED}  # flowgauge runs as installed
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    with h5py.File(out, "r") as f:
        return f["x"][...], float(f.attrs["sample_seconds"])


def setup(tmp, d, K, N, sigmas, seed=0):
    w, means, covs = make_mixture(d, K, seed)
    write_mixture_toml(os.path.join(tmp, "mix.toml"), w, means, covs)
    x = SIGMA_MAX * np.random.default_rng(seed + 1).standard_normal((N, d))
    with h5py.File(os.path.join(tmp, "in.h5"), "w") as f:
        f["x"] = x
        f["sigma"] = sigmas
    return w, means, covs, x


def best_of(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def cmd_torch(a):
    import torch

    torch.set_num_threads(a.threads)
    cases = [("a", "heun", sample_heun, 2, 8, 100_000, karras_sigmas(18, True)),
             ("b", "heun", sample_heun, 64, 16, 10_000, karras_sigmas(18, True)),
             ("c", "euler", sample_euler, 2, 8, 1_000_000, karras_sigmas(51, False))]
    tuned = " ".join(f"{k}={os.environ[k]}" for k in TUNED if k in os.environ) or "none (--plain)"
    print(f"threads = {a.threads}, torch {torch.__version__}, float64; PyTorch process settings: {tuned}")
    print("| case | solver | d | K | N | evals | PyTorch s | flowgauge s | speed-up | max |x_fg - x_torch| / max |x| |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, solver, loop, d, K, N, sig in cases:
        if a.cases and name not in a.cases:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            w, means, covs, x = setup(tmp, d, K, N, sig)
            model = Denoiser("torch", w, means, covs)
            xt = torch.from_numpy(x)
            sig_list = [float(s) for s in sig]
            with torch.no_grad():
                out, t_torch = best_of(lambda: loop(model, xt, sig_list), a.repeat)
            fg = [run_flowgauge(a.flowgauge, tmp, solver, a.threads) for _ in range(a.repeat)]
            t_fg = min(t for _, t in fg)
            diff = np.abs(fg[0][0] - out.numpy()).max() / np.abs(out.numpy()).max()
            evals = 2 * (len(sig) - 2) + 1 if solver == "heun" else len(sig) - 1
            print(f"| ({name}) | {solver} | {d} | {K} | {N:.0e} | {evals} | {t_torch:.3f} | {t_fg:.3f} | "
                  f"{t_torch / t_fg:.1f}x | {diff:.1e} |", flush=True)


def cmd_dop853(a):
    from scipy.integrate import solve_ivp

    d, K, N = 2, 8, 1000
    sig = np.array([SIGMA_MAX, SIGMA_MIN])
    with tempfile.TemporaryDirectory() as tmp:
        w, means, covs, x = setup(tmp, d, K, N, sig)
        model = Denoiser("numpy", w, means, covs)
        # EDM schedule: lambda = -2 log sigma, dx/dlambda = -(x - D(x, sigma)) / 2 (flowgauge's
        # reference coordinates z = x / alpha, time lambda; alpha = 1 here).
        lam = -2 * np.log(sig)
        nfe = [0]

        def f(l, y):
            nfe[0] += 1
            X = y.reshape(N, d)
            return (-(X - model(X, np.exp(-l / 2))) / 2).ravel()

        def scipy_run():
            nfe[0] = 0
            return solve_ivp(f, lam, x.ravel(), method="DOP853", rtol=a.rtol, atol=a.atol).y[:, -1].reshape(N, d)

        y_sp, t_sp = best_of(scipy_run, a.repeat)
        opts = ["--option", "rtol=1e-13", "--option", "atol=1e-13", "--option", "method=rkf78"]
        y_ref = run_flowgauge(a.flowgauge, tmp, "reference", 1, opts)[0]
        err = lambda y: np.abs(y - y_ref).max()
        print(f"1000 2-D trajectories, K = 8, sigma {SIGMA_MAX} -> {SIGMA_MIN}, rtol = atol = {a.rtol}")
        print("| integrator | seconds | model evaluations | max error vs rkf78 at 1e-13 | speed-up |")
        print("|---|---|---|---|---|")
        print(f"| scipy DOP853, one system of 2000 | {t_sp:.3f} | {nfe[0]} | {err(y_sp):.1e} | 1 |")
        for method in ("dopri5", "rkf78"):
            opts = ["--option", f"method={method}", "--option", f"rtol={a.rtol}", "--option", f"atol={a.atol}"]
            fg = [run_flowgauge(a.flowgauge, tmp, "reference", 1, opts) for _ in range(a.repeat)]
            t_fg = min(t for _, t in fg)
            with h5py.File(os.path.join(tmp, "fg.h5"), "r") as f:
                nfe_fg = int(f.attrs["nfe"])
            print(f"| flowgauge reference ({method}, batched) | {t_fg:.4f} | {nfe_fg} | {err(fg[0][0]):.1e} | "
                  f"{t_sp / t_fg:.1f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["torch", "dop853"])
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--flowgauge", default=os.path.join(here, "..", "..", "build", "release", "flowgauge"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", default="", help="subset of the torch cases, e.g. 'ac'")
    p.add_argument("--rtol", type=float, default=1e-10)
    p.add_argument("--atol", type=float, default=1e-10)
    p.add_argument("--plain", action="store_true", help="PyTorch with glibc's and OpenBLAS's default settings")
    a = p.parse_args()
    if a.what == "torch" and not a.plain and any(os.environ.get(k) != v for k, v in TUNED.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **TUNED})  # settings apply at start-up
    cmd_torch(a) if a.what == "torch" else cmd_dop853(a)


if __name__ == "__main__":
    main()
