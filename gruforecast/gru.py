"""The GRU: a reference cell, a fused autograd Function with a hand-derived backward and the
`FusedGRU` layer (drop-in for `torch.nn.GRU`'s parameters). Nothing about forecasting.

Equations (PyTorch's convention, gates ordered r, z, n in every (3H, .) weight):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes: x (T, B, I) time-major inside the Function, h (B, H), weight_ih (3H, I),
weight_hh (3H, H), biases (3H,). The layer accepts batch_first like `torch.nn.GRU`.

Not here: the forecasting network around it (`model.py`), training (`train.py`).
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import native
from .native import ptr


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


def _native_loops(x: Tensor):
    """The compiled C loops for this tensor, or None (CUDA, other dtypes, no compiler)."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or not _NATIVE[0]:
        return None
    lib = native.library()
    if lib is None:
        return None
    suffix = "f32" if x.dtype == torch.float32 else "f64"
    return getattr(lib, f"gru_forward_{suffix}"), getattr(lib, f"gru_backward_{suffix}")


_NATIVE = [True]  # tests switch the C loops off to check the torch path on its own


def use_native(enabled: bool) -> None:
    """Use the compiled C loops on the CPU when available (default), or the torch path."""
    _NATIVE[0] = enabled


def _input_projection(x: Tensor, w_ih: Tensor, b_ih: Tensor, b_hh: Tensor,
                      save: bool) -> tuple[Tensor, Tensor]:
    """ONE product (T*B, I) @ (I, 3H) for the input projections of every step.

    Returns gh (T, B, 3H) = [gi_r + b_hr, gi_z + b_hz, b_hn], the buffer each step's
    recurrent product is added to, and gin (T, B, H) = W_in x + b_in: the n part of b_hh
    must stay inside r * (W_hn h + b_hn), so it cannot be folded in like the others.
    Unless `save` (gh is then kept for the backward), both live in reused workspaces.
    """
    T, B, I = x.shape
    H = w_ih.shape[0] // 3
    gh = x.new_empty(T, B, 3 * H) if save else _workspace("gh", (T, B, 3 * H), x)
    torch.mm(x.reshape(T * B, I), w_ih.t(), out=gh.view(T * B, 3 * H))
    gin = torch.add(gh[..., 2 * H:], b_ih[2 * H:], out=_workspace("gin", (T, B, H), x))
    gh[..., : 2 * H] += b_ih[: 2 * H] + b_hh[: 2 * H]
    gh[..., 2 * H:] = b_hh[2 * H:]
    return gh, gin


def gru_sequence_forward(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
                         b_hh: Tensor, save: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Run one layer over a time-major sequence; return (out, gh, n).

    x (T, B, I), h0 (B, H); out (T, B, H). With `save`, also return what the backward
    needs: `gh` (T, B, 3H) holding [r, z, W_hn h + b_hn] of every step and `n` (T, B, H);
    without it (inference) the new-gate buffer is one (B, H) block reused across steps.
    """
    T, B, _ = x.shape
    H = w_hh.shape[1]
    gh, gin = _input_projection(x, w_ih, b_ih, b_hh, save)
    out = x.new_empty(T, B, H)
    n_buf = x.new_empty(T if save else 1, B, H)
    loops = _native_loops(x)
    if loops is not None:
        w_hh, h0 = w_hh.contiguous(), h0.contiguous()
        loops[0](T, B, H, ptr(gh), ptr(gin), ptr(w_hh), ptr(h0), ptr(n_buf), int(save), ptr(out))
    else:
        _forward_torch(gh, gin.mul_(2.0), w_hh, h0, n_buf, save, out)
    return (out, gh, n_buf) if save else (out, None, None)


def _forward_torch(gh: Tensor, gin2: Tensor, w_hh: Tensor, h0: Tensor, n_buf: Tensor,
                   save: bool, out: Tensor) -> None:
    """The step loop in torch ops (CUDA, and the CPU fallback); gin2 = 2 (W_in x + b_in)."""
    T, _, H = out.shape
    w_hh_t = w_hh.t()
    h = h0
    for t in range(T):
        g, n = gh[t], n_buf[t if save else 0]
        g.addmm_(h, w_hh_t)  # (B, 3H) += (B, H) @ (H, 3H): all three recurrent projections
        rz = g[:, : 2 * H].sigmoid_()  # r, z in place
        torch.addcmul(gin2[t], rz[:, :H], g[:, 2 * H:], value=2.0, out=n)  # 2 a_n
        n.sigmoid_().mul_(2.0).sub_(1.0)  # n = tanh(a_n): float32 tanh is ~5x slower here
        h = torch.lerp(n, h, rz[:, H:], out=out[t])  # h' = n + z (h - n)


def _backward_torch(gh: Tensor, n: Tensor, out: Tensor, h0: Tensor, d_out: Tensor | None,
                    d_hT: Tensor | None, w_hh: Tensor, D: Tensor) -> Tensor:
    """BPTT in torch ops: fill D (T, B, 4H) = [da_n, dgh_r, dgh_z, dgh_n]; return dL/dh0.

    Everything that does not depend on the running dh is vectorised over all steps first:
    with a_n the pre-activation of n, da_n = dh (1 - z)(1 - n^2), and
      dgh_r = da_n hn r (1 - r),  dgh_z = dh (h_prev - n) z (1 - z),  dgh_n = da_n r,
    so dgh[t] = dh_t * coef[t], gate by gate, and dh_prev = dh z + dgh W_hh.
    """
    T, B, H = out.shape
    r, z, hn = gh[..., :H], gh[..., H: 2 * H], gh[..., 2 * H:]
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, H)
    dn_da = (1 - z) * (1 - n * n)
    coef = torch.stack([dn_da * hn * r * (1 - r), (h_prev - n) * z * (1 - z), dn_da * r], 2)
    dgh = D[..., H:].view(T, B, 3, H) if D.is_contiguous() else None
    dh = torch.zeros_like(out)  # (T, B, H): dL/dh_t
    if d_out is not None:
        dh[-1] += d_out[-1]
    if d_hT is not None:
        dh[-1] += d_hT
    for t in range(T - 1, -1, -1):
        torch.mul(coef[t], dh[t].unsqueeze(1), out=dgh[t])  # (B, 3, H)
        prev = dh[t - 1] if t > 0 else torch.empty_like(h0)
        if d_out is not None and t > 0:
            torch.addcmul(d_out[t - 1], dh[t], z[t], out=prev)
        else:
            torch.mul(dh[t], z[t], out=prev)
        prev.addmm_(D[t, :, H:], w_hh)  # (B, H) += (B, 3H) @ (3H, H)
    torch.mul(dh, dn_da, out=D[..., :H])
    return prev


_WORKSPACE = threading.local()


def _workspace(name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A scratch buffer reused across calls (per thread, one per name).

    Only for buffers that never outlive the call (never saved for backward, never
    returned): a fresh multi-megabyte tensor costs a page fault per 4 KiB on first touch,
    which was measured to add ~25% to forward+backward at T=168, B=256, H=64.
    """
    cache = _WORKSPACE.__dict__
    buf = cache.get(name)
    numel = math.prod(shape)
    if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
        buf = cache[name] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buf[:numel].view(shape)


def _with_ones(a: Tensor, name: str) -> Tensor:
    """(N, K) -> (N, K + 1) with a column of ones: a product with it also sums the rows."""
    out = _workspace(name, (a.shape[0], a.shape[1] + 1), a)
    out[:, :-1] = a
    out[:, -1] = 1
    return out


class FusedGRUFunction(torch.autograd.Function):
    """One GRU layer over a whole sequence, with a hand-written backward pass.

    Time-major: x (T, B, I), h0 (B, H); returns out (T, B, H) and the final state (B, H).
    Forward: one (T*B, I) @ (I, 3H) product for the input projections of all steps, then
    per step one (B, H) @ (H, 3H) product into a preallocated buffer and the gate math in
    place. Backward (BPTT): per step one fused pass over the gates and one
    (B, 3H) @ (3H, H) product; the weight and bias gradients after the loop, each ONE
    product or reduction over all steps. On the CPU the step loops run in compiled C
    (native/), elsewhere in torch ops; both compute the same function.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor,  # type: ignore[override]
                b_ih: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None: skipped
        out, gh, n = gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, save=True)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, gh, n)
        return out, out[-1]

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_hT: Tensor | None):  # type: ignore[override]
        x, h0, w_ih, w_hh, out, gh, n = ctx.saved_tensors
        T, B, H = out.shape
        need_x, need_h0, need_wih, need_whh, need_bih, need_bhh = ctx.needs_input_grad
        D = _workspace("D", (T, B, 4 * H), out)
        loops = _native_loops(out)
        if loops is not None:
            d_h0, work, zeros = torch.empty_like(h0), out.new_empty(2, B, H), out.new_zeros(B, H)
            if d_out is not None and d_out.stride(2) != 1:
                d_out = d_out.contiguous()
            st, sb = d_out.stride()[:2] if d_out is not None else (0, 0)
            d_hT = d_hT.contiguous() if d_hT is not None else None
            loops[1](T, B, H, ptr(gh), ptr(n), ptr(out), ptr(h0.contiguous()), ptr(d_out),
                     st, sb, ptr(d_hT), ptr(w_hh.contiguous()), ptr(D), ptr(work[0]),
                     ptr(work[1]), ptr(zeros), ptr(d_h0))
        else:
            d_h0 = _backward_torch(gh, n, out, h0, d_out, d_hT, w_hh, D)

        # D columns: [da_n, dgh_r, dgh_z, dgh_n]. Columns 0..3H are the input
        # pre-activation gradients in (n, r, z) order, columns H..4H the recurrent ones in
        # (r, z, n) order, so each weight gradient is ONE product over all T*B rows.
        D2 = D.view(T * B, 4 * H)
        d_in, d_rec = D2[:, : 3 * H], D2[:, H:]

        def rzn(t: Tensor) -> Tensor:  # rows (n, r, z) -> (r, z, n)
            return torch.cat([t[H: 3 * H], t[:H]])

        d_x = d_wih = d_whh = d_bih = d_bhh = None
        if need_x:
            d_x = (d_in @ torch.cat([w_ih[2 * H:], w_ih[: 2 * H]])).view(T, B, -1)
        if need_wih or need_bih:
            # [x, 1]^T @ dG: the weight gradient and, in its last row, the bias gradient in
            # ONE product. mm(x^T, dG)^T was measured ~10x faster in MKL here than
            # mm(dG^T, x) at large T*B.
            g = rzn(torch.mm(_with_ones(x.reshape(T * B, -1), "x1").t(), d_in).t())
            d_wih, d_bih = g[:, :-1], g[:, -1]
        if need_whh or need_bhh:
            h_prev = _workspace("h_prev", (T, B, H + 1), out)  # [h_{t-1}, 1] of every step
            h_prev[0, :, :H], h_prev[1:, :, :H], h_prev[..., H] = h0, out[:-1], 1
            g = torch.mm(h_prev.view(T * B, H + 1).t(), d_rec).t()
            d_whh, d_bhh = g[:, :-1], g[:, -1]
        return d_x, d_h0 if need_h0 else None, d_wih, d_whh, d_bih, d_bhh


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
        x = (x.transpose(0, 1) if self.batch_first else x).contiguous()  # (T, B, I)
        B = x.shape[1]
        h0 = x.new_zeros(self.num_layers, B, self.hidden_size) if h0 is None else h0
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            params = self.layer_params(layer)
            needs_grad = any(t.requires_grad for t in (x, h0, *params))
            if torch.is_grad_enabled() and needs_grad:
                x, h_last = FusedGRUFunction.apply(x, h0[layer].contiguous(), *params)
            else:  # inference: no autograd graph, no saved gates
                x = gru_sequence_forward(x, h0[layer].contiguous(), *params, save=False)[0]
                h_last = x[-1]
            finals.append(h_last)
        out = x.transpose(0, 1) if self.batch_first else x  # (B, T, H): a view, like nn.GRU's layout
        return out, torch.stack(finals, 0)
