#!/usr/bin/python3
"""Independent NumPy implementation of four samplers, written from the published update rules
(EDM Algorithm 2; k-diffusion sample_dpmpp_2m; DDIM; classical RK4) with its own closed-form
mixture denoiser. Its outputs are the stored answers of tests/test_regression.cpp.
Rerun: /usr/bin/python3 tests/data/make_regression.py > tests/data/regression.txt
"""
import numpy as np

W = np.array([0.3, 0.7])
MU = np.array([[1.0, -0.5], [-1.5, 0.8]])
S = np.array([[0.2, 0.05], [0.1, 0.3]])  # diagonal covariances
X0 = np.array([[0.3, -1.2], [2.0, 0.4], [-0.7, -0.9]])  # starting points (scaled per problem)


def posterior(x, a, s):
    """E[x0 | x_t = x] and E[eps | x_t = x] for x_t = a x0 + s eps, diagonal-covariance mixture."""
    c = a * a * S + s * s  # (K, d)
    logn = np.log(W) - 0.5 * np.sum(np.log(2 * np.pi * c) + (x - a * MU) ** 2 / c, axis=1)
    r = np.exp(logn - logn.max())
    r /= r.sum()
    x0 = np.sum(r[:, None] * (MU + a * S / c * (x - a * MU)), axis=0)
    eps = -s * np.sum(r[:, None] * (-(x - a * MU) / c), axis=0)  # eps = -sigma * score
    return x0, eps


def karras(n, smin, smax, rho=7.0):
    i = np.arange(n) / (n - 1)
    s = (smax ** (1 / rho) + i * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    return np.append(s, 0.0)


def heun_edm(x, sig):  # EDM Algorithm 2, S_churn = 0
    for i in range(len(sig) - 1):
        s, sn = sig[i], sig[i + 1]
        d = (x - posterior(x, 1.0, s)[0]) / s
        xn = x + (sn - s) * d
        if sn != 0:
            d2 = (xn - posterior(xn, 1.0, sn)[0]) / sn
            xn = x + (sn - s) * 0.5 * (d + d2)
        x = xn
    return x


def dpmpp_2m(x, sig):  # k-diffusion sample_dpmpp_2m
    t = lambda s: -np.log(s)
    old = None
    for i in range(len(sig) - 1):
        den = posterior(x, 1.0, sig[i])[0]
        if sig[i + 1] == 0:
            x = den
            break
        h = t(sig[i + 1]) - t(sig[i])
        if old is None:
            x = sig[i + 1] / sig[i] * x - np.expm1(-h) * den
        else:
            r = (t(sig[i]) - t(sig[i - 1])) / h
            x = sig[i + 1] / sig[i] * x - np.expm1(-h) * ((1 + 1 / (2 * r)) * den - 1 / (2 * r) * old)
        old = den
    return x


B0, B1 = 0.1, 20.0
def vp(t):
    la = -0.25 * t * t * (B1 - B0) - 0.5 * t * B0
    return np.exp(la), np.sqrt(-np.expm1(2 * la))


def vp_t_of_lambda(lam):
    sp = np.log1p(np.exp(-lam))
    A, Bq, C = 0.25 * (B1 - B0), 0.5 * B0, 0.5 * sp
    return 2 * C / (Bq + np.sqrt(Bq * Bq + 4 * A * C))


def ddim_vp(x, n):  # DDIM eta = 0 on vp-linear, grid uniform in lambda over [1e-3, 1]
    lam = lambda t: 2 * np.log(vp(t)[0] / vp(t)[1])
    lams = lam(1.0) + (lam(1e-3) - lam(1.0)) * np.arange(n + 1) / n
    ts = [vp_t_of_lambda(l) for l in lams]
    ts[0], ts[-1] = 1.0, 1e-3
    for i in range(n):
        a, s = vp(ts[i])
        an, sn = vp(ts[i + 1])
        x0, eps = posterior(x, a, s)
        x = an * x0 + sn * eps
    return x


def rk4_fm(x, n):  # classical RK4 on dx/dt = eps - x0 (fm-linear: alpha = 1 - t, sigma = t), uniform t
    ts = 0.999 + (1e-3 - 0.999) * np.arange(n + 1) / n
    ts[0], ts[-1] = 0.999, 1e-3
    def f(x, t):
        x0, eps = posterior(x, 1 - t, t)
        return eps - x0
    for i in range(n):
        t, h = ts[i], ts[i + 1] - ts[i]
        k1 = f(x, t)
        k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = f(x + h * k3, ts[i + 1])
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def emit(name, xs):
    for j, x in enumerate(xs):
        print(name, j, " ".join(f"{v:.17g}" for v in x))


sig = karras(6, 0.002, 80.0)
emit("heun_edm_denoise6", [heun_edm(80.0 * x, sig) for x in X0])
emit("dpmpp_2m_edm_denoise6", [dpmpp_2m(80.0 * x, sig) for x in X0])
emit("ddim_vp_logsnr5", [ddim_vp(x, 5) for x in X0])
emit("rk4_fm_uniform4", [rk4_fm(x, 4) for x in X0])
