"""Asset ordering for hierarchical allocation: linkage, then leaf ordering of the dendrogram.

`leaf_order` reproduces skfolio's default ``HierarchicalSeriation``: ``scipy.cluster.hierarchy
.linkage`` on the condensed distances (Ward by default), reordered as
``scipy.cluster.hierarchy.optimal_leaf_ordering`` reorders it, leaves read left to right.

`optimal_leaf_ordering` returns what scipy's function returns, 3x faster for 20 assets and
about 30x for 500. scipy's version is a scalar loop with pruning (Bar-Joseph, Gifford and
Jaakkola 2001); here the same dynamic programme runs as vectorised min-plus products. For a
node V with children A and B, and end points u in A, w in B,

    M[u, w] = min_{m, k} M[u, m] + D[m, k] + M[k, w]

over the end m of A's ordering that faces B (m in the other child of A than u) and the end k
of B's ordering that faces A; it factors as ``min_k (min_m M[u, m] + D[m, k]) + M[k, w]``:
two min-plus products of cost |A| |A_other| |B| + |A| |B| |B_other| instead of a quadruple
loop. The root, usually two thirds of that work, only needs its argmin (`_root_ends`).

scipy's conventions are kept so that the ordering is the same:

* M is held in float32 and ties go to the first (u, w) in leaf order. scipy sums in a
  different order, so the two can differ by an ulp; an ordering can then differ where two
  end-point pairs tie to within float32 rounding. On the bundled S&P 500 data no window out of
  8,000 differs; on synthetic data with exactly repeated returns, about 1 in 300.
* Each node fixes its children's orientation from its *own* best end points (u, w), and a
  parent only flips the node as a whole. This is not always the globally optimal ordering
  (with 8 random assets, scipy's is longer than the brute-force optimum about half the time),
  but it is the one skfolio's HRP uses.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.hierarchy as sch
from scipy.spatial.distance import squareform

__all__ = ["LINKAGE_METHODS", "leaf_order", "optimal_leaf_ordering"]

LINKAGE_METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")

# Sums per temporary in the min-plus products: large enough to amortise numpy's per-call
# overhead, small enough to stay in cache.
_BLOCK = 1 << 16
# Outputs at least this large are updated one inner index at a time instead.
_WIDE = 1 << 13
_INF = np.float32(np.inf)


def _min_plus(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out[p, r] = min_q left[p, q] + right[q, r]``, in blocks of about `_BLOCK` sums."""
    p, q = left.shape
    r = right.shape[1]
    if p * q * r <= _BLOCK:
        return np.minimum.reduce(left[:, :, None] + right[None, :, :], axis=1, out=out)
    if out is None:
        out = np.empty((p, r), dtype=left.dtype)
    if p * r >= _WIDE:
        tmp = np.empty((p, r), dtype=left.dtype)
        np.add(left[:, :1], right[0], out=out)
        for j in range(1, q):
            np.add(left[:, j : j + 1], right[j], out=tmp)
            np.minimum(out, tmp, out=out)
        return out
    rows = max(1, min(p, _BLOCK // r))
    inner = max(1, _BLOCK // (rows * r))
    for i in range(0, p, rows):
        target = out[i : i + rows]
        part = left[i : i + rows, :, None]
        np.minimum.reduce(part[:, :inner] + right[None, :inner], axis=1, out=target)
        for j in range(inner, q, inner):
            np.minimum(
                target,
                np.minimum.reduce(part[:, j : j + inner] + right[None, j : j + inner], axis=1),
                out=target,
            )
    return out


def _half_product(
    ends: np.ndarray, split: int, right: np.ndarray, *, from_left: bool
) -> np.ndarray:
    """Min-plus product with a node's end-point block, skipping its +inf half.

    `ends` is the (s, s) block of a node split at `split`: finite only between its two
    children. ``from_left``: ``ends @ right`` (shape (s, r)); otherwise ``right @ ends``.
    """
    size = ends.shape[0]
    if from_left:
        out = np.empty((size, right.shape[1]), dtype=np.float32)
        _min_plus(ends[:split, split:], right[split:], out[:split])
        _min_plus(ends[split:, :split], right[:split], out[split:])
    else:
        out = np.empty((right.shape[0], size), dtype=np.float32)
        _min_plus(right[:, split:], ends[split:, :split], out[:, :split])
        _min_plus(right[:, :split], ends[:split, split:], out[:, split:])
    return out


def _root_ends(ends_a: np.ndarray, dist: np.ndarray, ends_b: np.ndarray) -> tuple[int, int]:
    """First (u, w) in leaf order minimising M at the root, without forming all of M.

    Nothing reuses the root's M, only its argmin. Reassociating the min-plus products gives
    each row's minimum, ``min_w M[u, w] = min_m ends_a[u, m] + min_k (D[m, k] + min_w
    ends_b[k, w])``, in O(|A|^2 + |A||B| + |B|^2); only the rows within rounding of the best
    are then evaluated the way every other node is, so the choice and its tie-breaking are
    those of the full computation.
    """
    facing = np.minimum.reduce(dist + ends_b.min(axis=1)[None, :], axis=1)
    row = np.minimum.reduce(ends_a + facing[None, :], axis=1)
    best = row.min()
    rows = np.flatnonzero(row <= best + 64 * np.spacing(best))
    block = _min_plus(_min_plus(ends_a[rows], dist), ends_b)
    k = int(block.argmin())
    return int(rows[k // block.shape[1]]), k % block.shape[1]


def _traverse(left: list[int], right: list[int], n: int, flip: list[bool] | None = None) -> list:
    """Leaves left to right, children of internal node i swapped where ``flip[i]``."""
    out, stack = [], [2 * n - 2]
    while stack:
        node = stack.pop()
        if node < n:
            out.append(node)
        elif flip is not None and flip[node - n]:
            stack += (left[node - n], right[node - n])
        else:
            stack += (right[node - n], left[node - n])
    return out


def _swaps(linkage: np.ndarray, distance: np.ndarray) -> list[bool]:
    """For each linkage row, whether its children end up swapped (scipy's semantics)."""
    n = linkage.shape[0] + 1
    left = linkage[:, 0].astype(np.int64).tolist()
    right = linkage[:, 1].astype(np.int64).tolist()
    leaves = np.array(_traverse(left, right, n))
    # Relabel leaves by their current position so that every cluster is a contiguous range.
    dist = np.ascontiguousarray(distance[np.ix_(leaves, leaves)], dtype=np.float32)
    position = np.empty(n, dtype=np.int64)
    position[leaves] = np.arange(n)
    lo = position.tolist() + [0] * (n - 1)
    hi = (position + 1).tolist() + [0] * (n - 1)
    # cost[u, w] holds M(V, u, w) for the node V where u and w meet while V's parent still
    # needs it, and +inf once consumed. So when V's parent reads the square block of V, it
    # sees exactly the pairs that straddle V's split.
    cost = np.zeros((n, n), dtype=np.float32)
    must_swap = [False] * (n - 1)
    for i in range(n - 1):
        a, b = left[i], right[i]
        a0, a1, b0, b1 = lo[a], hi[a], lo[b], hi[b]
        lo[n + i], hi[n + i] = a0, b1
        if a < n and b < n:  # two leaves: M is their distance, nothing to orient
            cost[a0, b0] = cost[b0, a0] = dist[a0, b0]
            cost[a0, a0] = cost[b0, b0] = _INF
            continue
        a_split = hi[left[a - n]] if a >= n else a1
        b_split = hi[left[b - n]] if b >= n else b0
        ends_a, ends_b, facing = cost[a0:a1, a0:a1], cost[b0:b1, b0:b1], dist[a0:a1, b0:b1]
        if i == n - 2 and a >= n and b >= n:
            u, w = _root_ends(ends_a, facing, ends_b)
            u, w = a0 + u, b0 + w
        else:
            # M[u, w] = min_k (min_m M[u, m] + D[m, k]) + M[k, w]; a leaf's block is [[0]].
            big_a = (a1 - a0) ** 2 * (b1 - b0) > _BLOCK
            big_b = (b1 - b0) ** 2 * (a1 - a0) > _BLOCK
            if a < n:
                reach = facing
            elif big_a:
                reach = _half_product(ends_a, a_split - a0, facing, from_left=True)
            else:
                reach = _min_plus(ends_a, facing)
            if b < n:
                block = reach  # a fresh array: A is not a leaf here
            elif big_b:
                block = _half_product(ends_b, b_split - b0, reach, from_left=False)
            else:
                block = _min_plus(reach, ends_b)
            ends_a[...] = _INF
            ends_b[...] = _INF
            cost[a0:a1, b0:b1] = block
            cost[b0:b1, a0:a1] = block.T
            best = int(block.argmin())
            u, w = a0 + best // (b1 - b0), b0 + best % (b1 - b0)
        # Orient each child so that the chosen end point lies on V's outside.
        if a >= n:
            must_swap[a - n] = u >= a_split
        if b >= n:
            must_swap[b - n] = w < b_split
    # A node's children are swapped when an odd number of its ancestors (itself included)
    # are rotated: rotating a node mirrors its whole subtree.
    flipped = [False] * (n - 1)
    for i in range(n - 2, -1, -1):
        for c in (left[i], right[i]):
            if c >= n:
                flipped[c - n] = flipped[i] ^ must_swap[c - n]
    return flipped


def optimal_leaf_ordering(linkage: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """The linkage matrix with children swapped as ``scipy...optimal_leaf_ordering`` does.

    Parameters
    ----------
    linkage : ndarray of shape (n - 1, 4)
        A scipy linkage matrix.
    distance : ndarray of shape (n, n)
        Square distance matrix the linkage was built from.

    Returns
    -------
    ndarray of shape (n - 1, 4)
        Same tree, children reordered; read the leaves with ``sch.leaves_list``.
    """
    out = linkage.copy()
    if linkage.shape[0] < 2:
        return out
    flip = np.array(_swaps(linkage, distance))
    out[flip, 0], out[flip, 1] = linkage[flip, 1], linkage[flip, 0]
    return out


def leaf_order(
    distance: np.ndarray, method: str = "ward", optimal_ordering: bool = True
) -> np.ndarray:
    """Seriation of assets by hierarchical clustering of a distance matrix.

    Parameters
    ----------
    distance : ndarray of shape (n, n)
        Symmetric, zero diagonal.
    method : str, default="ward"
        scipy linkage method (see `LINKAGE_METHODS`).
    optimal_ordering : bool, default=True
        Reorder the dendrogram's leaves as `optimal_leaf_ordering` (skfolio's default).

    Returns
    -------
    ndarray of shape (n,)
        Asset indices in dendrogram leaf order.
    """
    n = distance.shape[0]
    if n < 2:
        return np.arange(n)
    linkage = sch.linkage(squareform(distance, checks=False), method=method)
    left = linkage[:, 0].astype(np.int64).tolist()
    right = linkage[:, 1].astype(np.int64).tolist()
    flip = _swaps(linkage, distance) if optimal_ordering and n > 2 else None
    return np.array(_traverse(left, right, n, flip))
