"""A ReLU network evaluated and differentiated block by block of rows, for training on CPU.

Deep hedging evaluates one small network (e.g. 3 -> 32 x 4 -> 1) on every date of every path,
hundreds of thousands of rows per Adam step. On one CPU core, autograd of `torch.nn.Linear`
layers spends about as long in memory-bound work as in the matrix products: every layer
allocates fresh activations and gradients the size of all rows (and the allocator hands large
blocks back to the system, so every step pays page faults to get them again), and the first
layer's weight gradient runs as ``grad^T x``, a product with an inner dimension of all rows and
an output of only 32 x 3, a shape the BLAS handles poorly. `blocked_relu_mlp` does the same
arithmetic block by block of rows: the forward pass writes each hidden activation once (the
product adds the bias, the ReLU runs in place) into buffers that an `ActivationPool` hands from
one training step to the next, and the backward pass, written out by hand, forms each weight
gradient in the orientation the BLAS is fast at and masks gradients with the saved
activations. The result equals autograd's up to the order of floating-point sums. On one core
it trains the deep hedger's 4 x 32 MLP about 10% faster than autograd of the same layers (200,000
rows a step: 100 ms against 112 ms when measured); the products themselves, at the BLAS's rate
for these shapes, take about 60 ms of a step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["ActivationPool", "blocked_relu_mlp"]


class ActivationPool:
    """Hidden-activation buffers handed back by backward passes for later forward passes.

    A forward pass takes a set of the right shapes (or allocates one) and saves it for its
    backward pass, which gives the set back when done: a set is never in two graphs at once,
    and a graph dropped without a backward pass simply frees its set. The pool keeps the
    `max_sets` sets given back last (a recurrent policy calls its network once per date, so
    one training step uses one set per date). Copies of a pool (``copy.deepcopy`` of a
    network, pickling) start empty.
    """

    def __init__(self, max_sets: int = 64) -> None:
        self.max_sets = max_sets
        self._spare: list[list[Tensor]] = []

    def take(self, like: Tensor, rows: int, widths: Sequence[int]) -> list[Tensor]:
        """Buffers (rows, width) for each width, in `like`'s dtype and device."""
        shapes = [(rows, w) for w in widths]
        for k, spare in enumerate(self._spare):
            if [tuple(a.shape) for a in spare] == shapes and all(
                a.dtype == like.dtype and a.device == like.device for a in spare
            ):
                return self._spare.pop(k)
        return [like.new_empty(shape) for shape in shapes]

    def give(self, buffers: list[Tensor]) -> None:
        self._spare.append(buffers)
        del self._spare[: -self.max_sets]

    def clear(self) -> None:
        """Free the spare sets (e.g. when training ends)."""
        self._spare = []

    def __deepcopy__(self, memo: dict) -> ActivationPool:
        return ActivationPool(self.max_sets)

    def __getstate__(self) -> dict:
        return {"max_sets": self.max_sets, "_spare": []}


def blocked_relu_mlp(
    x: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    block: int,
    pool: ActivationPool | None = None,
) -> Tensor:
    """``L_k(relu(L_{k-1}(... relu(L_1(x)))))`` with ``L_i(h) = h W_i^T + b_i``, by blocks.

    Parameters
    ----------
    x : Tensor
        Inputs, shape (rows, n_in).
    weights, biases : sequences of Tensor
        Layer ``i`` has weight (n_out_i, n_in_i) and bias (n_out_i,), as in `torch.nn.Linear`;
        all in `x`'s dtype and device.
    block : int
        Rows per block (a few thousand keep a block's activations in a core's cache).
    pool : ActivationPool, optional
        Where the hidden activations' memory comes from and goes back to (default: fresh).

    Returns
    -------
    Tensor
        Outputs, shape (rows, n_out_k), differentiable with respect to `x` and the parameters
        (once: the backward pass itself is not differentiable).
    """
    pool = ActivationPool() if pool is None else pool
    return _BlockedReluMLP.apply(x, block, pool, len(weights), *weights, *biases)


def _narrow_rows_product(g: Tensor, h: Tensor) -> Tensor:
    """``g^T h`` (n_out, n_in), computed so that the narrower side is the product's rows.

    The BLAS is several times slower on these shapes (an inner dimension of thousands of rows)
    when the result has few columns: ``g^T h`` for the first layer (3 inputs) and ``(h^T g)^T``
    for a last layer of 1 or 2 outputs would be the slow orientations.
    """
    if h.shape[1] < g.shape[1]:
        return torch.mm(h.t(), g).t()
    return torch.mm(g.t(), h)


class _BlockedReluMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, block, pool, n_layers, *params):  # type: ignore[override]
        weights, biases = params[:n_layers], params[n_layers:]
        x = x.contiguous()
        rows = x.shape[0]
        hidden = pool.take(x, rows, [w.shape[0] for w in weights[:-1]])
        out = x.new_empty(rows, weights[-1].shape[0])
        for lo in range(0, rows, block):
            h = x[lo : lo + block]
            for w, b, a in zip(weights[:-1], biases[:-1], hidden, strict=True):
                h = torch.addmm(b, h, w.t(), out=a[lo : lo + block]).relu_()
            torch.addmm(biases[-1], h, weights[-1].t(), out=out[lo : lo + block])
        ctx.block, ctx.pool, ctx.n_layers = block, pool, n_layers
        ctx.save_for_backward(x, *hidden, *weights)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        if ctx.pool is None:
            raise RuntimeError("blocked_relu_mlp: a second backward pass through the same graph")
        n_layers, block = ctx.n_layers, ctx.block
        x, *rest = ctx.saved_tensors
        hidden, weights = rest[: n_layers - 1], rest[n_layers - 1 :]
        inputs = [x, *hidden]
        grad_out = grad_out.contiguous()
        # Parameter gradients only if wanted (an adversary trains through a frozen hedger).
        params_wanted = any(ctx.needs_input_grad[4:])
        grad_w = [torch.zeros_like(w) for w in weights]
        grad_b = [w.new_zeros(w.shape[0]) for w in weights]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        # Gradients with respect to each hidden activation, one block at a time (reused: a
        # fresh tensor per product would cost page faults on every block).
        grad_h = [a.new_empty(min(block, a.shape[0]), a.shape[1]) for a in hidden]
        for lo in range(0, x.shape[0], block):
            g = grad_out[lo : lo + block]
            for i in reversed(range(n_layers)):
                h = inputs[i][lo : lo + block]
                if params_wanted:
                    grad_w[i].add_(_narrow_rows_product(g, h))
                    grad_b[i].add_(g.sum(dim=0))
                if i > 0:
                    below = torch.mm(g, weights[i], out=grad_h[i - 1][: g.shape[0]])
                    # h is the relu'd output of the layer below: no gradient where h == 0.
                    g = torch.ops.aten.threshold_backward.grad_input(
                        below, h, 0.0, grad_input=below
                    )
                elif grad_x is not None:
                    # (W^T g^T)^T: with few inputs, a product with few rows is the fast one.
                    grad_x[lo : lo + block].copy_(torch.mm(weights[0].t(), g.t()).t())
        ctx.pool.give(list(hidden))
        ctx.pool = None  # its buffers may now be overwritten by the next forward pass
        if not params_wanted:
            return (grad_x, None, None, None, *[None] * (2 * n_layers))
        return (grad_x, None, None, None, *grad_w, *grad_b)
