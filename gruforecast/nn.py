"""The GRU: a reference cell, a fused autograd Function with a hand-derived backward, the
`FusedGRU` layer (drop-in for `torch.nn.GRU`'s parameters) and the `GRURegressor` head.

Equations (PyTorch's convention, gates ordered r, z, n in every (3H, .) weight):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes: x (T, B, I) time-major inside the Function, h (B, H), weight_ih (3H, I),
weight_hh (3H, H), biases (3H,). The layer accepts batch_first like `torch.nn.GRU`.

Not here: training loops, scaling, data (`train.py`, `windows.py`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def gru_cell_reference(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor,
                       b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step in plain ops: the equations above, for tests and as documentation."""
    gi = x @ w_ih.t() + b_ih  # (B, 3H)
    gh = h @ w_hh.t() + b_hh  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def _tanh_via_sigmoid_(a2: Tensor) -> Tensor:
    """In place: given 2a, return tanh(a) = 2 sigmoid(2a) - 1.

    float32 tanh costs about 6x sigmoid per element on the CPUs we measured; this identity
    is exact in real arithmetic and within a few ulp in float32.
    """
    return a2.sigmoid_().mul_(2.0).sub_(1.0)


def gru_sequence_forward(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
                         b_hh: Tensor, save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Run one layer over (T, B, I); return (out (T, B, H), gates, hn).

    With `save`, also return what the backward needs: the gates [r, z, n] (T, B, 3H) and
    W_hn h + b_hn (T, B, H) of every step; without it (inference) no per-step gate buffer
    is kept.
    """
    T, B, _ = x.shape
    H = w_hh.shape[1]
    # Input projections of all steps in one product. The r and z parts get b_hh folded in;
    # the n part of b_hh must stay inside r * (W_hn h + b_hn), so the buffer each step's
    # recurrent product is added to holds [gi_r + b_hr, gi_z + b_hz, b_hn].
    gh = torch.addmm(b_ih, x.reshape(T * B, -1), w_ih.t()).view(T, B, 3 * H)
    gi_n2 = gh[..., 2 * H:].mul(2.0)  # 2 * (W_in x + b_in), for tanh via sigmoid
    gh[..., : 2 * H] += b_hh[: 2 * H]
    gh[..., 2 * H:] = b_hh[2 * H:]
    out = x.new_empty(T, B, H)
    gates = x.new_empty(T if save else 1, B, 3 * H)
    w_hh_t = w_hh.t()
    h = h0
    for t in range(T):
        g = gates[t if save else 0]
        gh[t].addmm_(h, w_hh_t)  # (B, 3H): now the recurrent pre-activations of step t
        torch.sigmoid(gh[t, :, : 2 * H], out=g[:, : 2 * H])  # r, z
        n = g[:, 2 * H:]
        torch.addcmul(gi_n2[t], g[:, :H], gh[t, :, 2 * H:], value=2.0, out=n)  # 2 a_n
        _tanh_via_sigmoid_(n)
        h_new = out[t]
        torch.sub(h, n, out=h_new)
        h_new.mul_(g[:, H: 2 * H]).add_(n)  # h' = n + z * (h - n)
        h = h_new
    if not save:
        return out, None, None
    return out, gates, gh[..., 2 * H:]


class FusedGRUFunction(torch.autograd.Function):
    """One GRU layer over a whole sequence, with a hand-written backward pass.

    Forward: one (T*B, I) @ (I, 3H) product for the input projections of all steps, then
    per step one (B, H) @ (H, 3H) product into a preallocated buffer and the gate math
    in place. Backward (BPTT): per step one broadcast multiply and one (B, 3H) @ (3H, H)
    product; the weight and bias gradients come after the loop as single large products.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor,  # type: ignore[override]
                b_ih: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
        out, gates, hn = gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, save=True)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, gates, hn)
        return out, out[-1].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor, d_hT: Tensor):  # type: ignore[override]
        x, h0, w_ih, w_hh, out, gates, hn = ctx.saved_tensors
        T, B, H = out.shape
        need_x, need_h0, need_wih, need_whh, need_bih, need_bhh = ctx.needs_input_grad
        if d_out is None:
            d_out = torch.zeros_like(out)
        r, z, n = gates[..., :H], gates[..., H: 2 * H], gates[..., 2 * H:]
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]], 0)  # (T, B, H)

        # Everything that does not depend on the running dh, vectorised over all steps:
        # with a_n the pre-activation of n, da_n = dh (1 - z)(1 - n^2), and
        #   dgh_r = da_n * hn * r (1 - r),  dgh_z = dh (h_prev - n) z (1 - z),
        #   dgh_n = da_n * r,  and  dh_prev = dh * z + dgh @ W_hh.
        a_n = (1 - z) * (1 - n * n)  # d n-preact / dh
        coef = torch.empty_like(gates).view(T, B, 3, H)
        torch.mul(a_n * hn, r * (1 - r), out=coef[:, :, 0])
        torch.mul(h_prev - n, z * (1 - z), out=coef[:, :, 1])
        torch.mul(a_n, r, out=coef[:, :, 2])

        dgh = torch.empty_like(gates)  # (T, B, 3H): gradients of the recurrent pre-acts
        dh_all = torch.empty_like(out)  # (T, B, H): dL/dh_t, the running gradient
        dh_all[-1] = d_out[-1] + (d_hT if d_hT is not None else 0)
        for t in range(T - 1, -1, -1):
            dh = dh_all[t]
            torch.mul(dh.unsqueeze(1), coef[t], out=dgh[t].view(B, 3, H))
            if t > 0:
                prev = dh_all[t - 1]
                torch.addcmul(d_out[t - 1], dh, z[t], out=prev)
                prev.addmm_(dgh[t], w_hh)
        d_h0 = None
        if need_h0:
            d_h0 = torch.addmm(dh_all[0] * z[0], dgh[0], w_hh)

        # Input pre-activation gradients equal dgh except in the n part (no factor r).
        dgi = dgh.clone()
        torch.mul(dh_all, a_n, out=dgi[..., 2 * H:])
        dgh2, dgi2 = dgh.view(T * B, 3 * H), dgi.view(T * B, 3 * H)
        d_x = d_wih = d_whh = d_bih = d_bhh = None
        if need_x:
            d_x = (dgi2 @ w_ih).view(T, B, -1)
        if need_wih:
            # mm(x^T, dgi)^T: measured ~10x faster in MKL than mm(dgi^T, x) at large B*T.
            d_wih = torch.mm(x.reshape(T * B, -1).t(), dgi2).t()
        if need_whh:
            d_whh = torch.mm(h_prev.view(T * B, H).t(), dgh2).t()
        if need_bih:
            d_bih = dgi2.sum(0)
        if need_bhh:
            d_bhh = dgh2.sum(0)
        return d_x, d_h0, d_wih, d_whh, d_bih, d_bhh


class FusedGRU(nn.Module):
    """A GRU layer stack with `torch.nn.GRU`'s parameter names, shapes and semantics.

    A `torch.nn.GRU` state dict loads unchanged (unidirectional, with biases).
    Input (B, T, I) with batch_first (the default here), else (T, B, I); returns
    (output, h_n) with output (B, T, H) and h_n (num_layers, B, H), like `nn.GRU`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, batch_first: bool = True) -> None:
        super().__init__()
        if num_layers < 1 or hidden_size < 1 or input_size < 1:
            raise ValueError("input_size, hidden_size and num_layers must be >= 1")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.dropout, self.batch_first = num_layers, dropout, batch_first
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, in_size)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(3 * hidden_size)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(3 * hidden_size)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as `torch.nn.GRU` initialises."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_params(self, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return tuple(getattr(self, f"{n}_l{layer}") for n in  # type: ignore[return-value]
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.batch_first:
            x = x.transpose(0, 1)
        x = x.contiguous()  # (T, B, I)
        B = x.shape[1]
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, B, self.hidden_size)
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            params = self.layer_params(layer)
            needs_grad = any(t.requires_grad for t in (x, h0, *params))
            if torch.is_grad_enabled() and needs_grad:
                x, h_last = FusedGRUFunction.apply(x, h0[layer], *params)
            else:  # inference: no autograd graph, no saved gates
                x = gru_sequence_forward(x, h0[layer], *params, save=False)[0]
                h_last = x[-1]
            finals.append(h_last)
        out = x.transpose(0, 1) if self.batch_first else x
        return out, torch.stack(finals, 0)


class GRURegressor(nn.Module):
    """FusedGRU over the lookback window, then a linear head emitting all H steps at once.

    Input (B, L, C): column 0 the scaled target, the rest scaled features. With
    `window_norm="last"` the last target value of each window is subtracted from the
    target column and added back to the output: the network learns the change from the
    last observation, which keeps it in range when a trend leaves the training levels.
    """

    def __init__(self, n_inputs: int, hidden_size: int, num_layers: int, horizon: int,
                 dropout: float = 0.0, window_norm: str = "last") -> None:
        super().__init__()
        self.window_norm = window_norm
        self.gru = FusedGRU(n_inputs, hidden_size, num_layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x: Tensor) -> Tensor:  # (B, L, C) -> (B, H)
        level = x[:, -1:, 0] if self.window_norm == "last" else x.new_zeros(x.shape[0], 1)
        if self.window_norm == "last":
            x = torch.cat([x[..., :1] - level.unsqueeze(-1), x[..., 1:]], dim=-1)
        _, h = self.gru(x)  # h: (layers, B, hidden)
        return self.head(h[-1]) + level
