"""All-pairs SVCCA: vectorised (rnnuniv.similarity) versus per-pair loops of covariance CCA.

Synthetic networks: [samples, units] states = shared latent signals mixed per network + noise.
Timed, for each N:
  vectorised   svcca_distance_matrix(states, k): per-network SVD once, all pair products as
               blocks of one matrix product, batched singular values.
  loop-svcca   per pair: SVD-reduce both networks to k PCs, then covariance CCA
               (C_aa^{-1/2} C_ab C_bb^{-1/2}, inverse square roots by eigh, as google/svcca's
               cca_core), i.e. the public code called on every pair.
  loop-cached  per pair: the same covariance CCA on PCA scores computed once per network
               (a fairer loop: only the pairwise part is looped).
Loops over a random subset of pairs are extrapolated linearly to all pairs (stated in the output).
Run: python benchmarks/bench_cca.py [--sizes 100 500] [--measure-2880]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from rnnuniv.similarity import svcca_distance_matrix


def synthetic_states(
    rng: np.random.Generator, n_networks: int, n_samples: int, n_units: int
) -> list[np.ndarray]:
    """float32 [samples, units] per network: 12 shared latents mixed randomly, plus noise."""
    latent = rng.standard_normal((n_samples, 12)).astype(np.float32)
    return [
        latent @ rng.standard_normal((12, n_units)).astype(np.float32)
        + 0.3 * rng.standard_normal((n_samples, n_units)).astype(np.float32)
        for _ in range(n_networks)
    ]


def pca_scores(states: np.ndarray, k: int) -> np.ndarray:
    centred = states.astype(np.float64) - states.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u[:, :k] * s[:k]


def covariance_cca_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - mean canonical correlation, rho = svd(C_aa^{-1/2} C_ab C_bb^{-1/2}) (public SVCCA form)."""
    covariance = np.cov(np.hstack([a, b]).T)  # [ka + kb, ka + kb]
    ka = a.shape[1]

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    whitened = (
        inv_sqrt(covariance[:ka, :ka]) @ covariance[:ka, ka:] @ inv_sqrt(covariance[ka:, ka:])
    )
    return 1.0 - np.linalg.svd(whitened, compute_uv=False).mean()


def time_loop(pairs, distance_of_pair) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    values = np.array([distance_of_pair(i, j) for i, j in pairs])
    return time.perf_counter() - start, values


def sample_pairs(rng, n_networks: int, max_pairs: int) -> np.ndarray:
    rows, cols = np.triu_indices(n_networks, k=1)
    pick = rng.choice(len(rows), size=min(max_pairs, len(rows)), replace=False)
    return np.stack([rows[pick], cols[pick]], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--svcca-pairs", type=int, default=100, help="pairs timed for loop-svcca (extrapolated)"
    )
    parser.add_argument(
        "--cached-pairs", type=int, default=5000, help="pairs timed for loop-cached (extrapolated)"
    )
    parser.add_argument(
        "--measure-2880", action="store_true", help="also run the vectorised code at N=2880"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and BLAS threads (default: library default)",
    )
    args = parser.parse_args()
    if args.threads is not None:
        # oversubscribed machines make multi-threaded BLAS spin; fix the count for both sides
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    print(f"load average at start: {os.getloadavg()}   torch threads: {torch.get_num_threads()}")
    print(
        f"{args.units} units, {args.samples} samples, k = {args.k} components, float64 arithmetic"
    )
    rng = np.random.default_rng(args.seed)
    vectorised_times = {}
    for n_networks in args.sizes:
        states = synthetic_states(rng, n_networks, args.samples, args.units)
        n_pairs = n_networks * (n_networks - 1) // 2
        start = time.perf_counter()
        matrix = svcca_distance_matrix(states, args.k, progress=False)
        vectorised_times[n_networks] = t_vec = time.perf_counter() - start
        print(f"\nN = {n_networks} ({n_pairs} pairs)")
        print(f"  vectorised (all pairs, measured)       {t_vec:10.2f} s")

        pairs = sample_pairs(rng, n_networks, args.svcca_pairs)
        t_sub, values = time_loop(
            pairs,
            lambda i, j: covariance_cca_distance(
                pca_scores(states[i], args.k), pca_scores(states[j], args.k)
            ),
        )
        t_svcca = t_sub * n_pairs / len(pairs)
        diff = np.abs(values - matrix[pairs[:, 0], pairs[:, 1]]).max()
        how = "measured" if len(pairs) == n_pairs else f"{len(pairs)} random pairs, extrapolated"
        print(
            f"  loop-svcca  ({how:>32}) {t_svcca:10.2f} s   ratio {t_svcca / t_vec:8.1f}x   max|diff| {diff:.1e}"
        )

        start = time.perf_counter()
        scores = [pca_scores(s, args.k) for s in states]
        t_reduce = time.perf_counter() - start
        pairs = sample_pairs(rng, n_networks, args.cached_pairs)
        t_sub, values = time_loop(pairs, lambda i, j: covariance_cca_distance(scores[i], scores[j]))
        t_cached = t_reduce + t_sub * n_pairs / len(pairs)
        diff = np.abs(values - matrix[pairs[:, 0], pairs[:, 1]]).max()
        how = "measured" if len(pairs) == n_pairs else f"{len(pairs)} random pairs, extrapolated"
        print(
            f"  loop-cached ({how:>32}) {t_cached:10.2f} s   ratio {t_cached / t_vec:8.1f}x   max|diff| {diff:.1e}"
            f"   (incl. {t_reduce:.1f} s of per-network SVDs)"
        )
        del states, scores, matrix

    if args.measure_2880:
        states = synthetic_states(rng, 2880, args.samples, args.units)
        start = time.perf_counter()
        svcca_distance_matrix(states, args.k, progress=True)
        print(f"\nN = 2880: vectorised, measured: {time.perf_counter() - start:.1f} s")
    elif len(vectorised_times) >= 2:
        # t(N) = a N + b N^2 (per-network SVDs + pairs) through the two largest measured sizes
        (n1, t1), (n2, t2) = sorted(vectorised_times.items())[-2:]
        b = (t2 / n2 - t1 / n1) / (n2 - n1)
        a = t1 / n1 - b * n1
        print(
            f"\nN = 2880: vectorised, extrapolated from N = {n1}, {n2} with t = aN + bN^2: "
            f"{a * 2880 + b * 2880**2:.0f} s (run with --measure-2880 to measure)"
        )
    print("netrep: not on PyPI (github.com/ahwillia/netrep only); comparison skipped")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
