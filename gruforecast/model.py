"""The forecasting network: `GRURegressor`, a `FusedGRU` over the lookback window with a
head emitting every horizon step at once, and `Ensemble`, K of them side by side.

The architecture is `config.ModelConfig`. A model maps windows (B, L, C) in scaled units
(column 0 the target) to forecasts (B, H, Q) in the same units: the Q quantiles of
`ModelConfig.output_quantiles` per step, sorted, the median (the point forecast) among
them (Q = 1 for a point model). Scaling and inverting live in `scaling.py`,
training in `train.py`.

A new architecture option is one `ModelConfig` field (with its `help`, and its `absent`
value: what models saved before the option existed did) and its use here; the CLI, batch
keys, the artifact and `gruforecast info` are built from the fields (`config.py`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .errors import InputError
from .gru import FusedGRU

MAX_EMBEDDED_SERIES = 2 ** 24  # float32 holds every integer up to it


def build_model(cfg: ModelConfig, n_inputs: int, lookback: int, horizon: int,
                season: int = 1, known: tuple[int, ...] = (),
                ahead_only: tuple[int, ...] = (), observed_scale: bool = False,
                wide: tuple[int, ...] = (), n_series: int = 1) -> GRURegressor | Ensemble:
    """The network for these shapes: one regressor, or an ensemble of `cfg.ensemble`."""
    if (cfg.second_season or 0) > lookback:
        raise InputError(f"--second-season ({cfg.second_season}) needs a lookback of at least "
                         f"{cfg.second_season} steps (now {lookback}); raise --lookback")
    if cfg.series_embedding and n_series > MAX_EMBEDDED_SERIES:
        raise InputError(f"--series-embedding learns a state per series, and a window carries its series' "
                         f"index as a float32, exact up to {MAX_EMBEDDED_SERIES:,} series (now {n_series:,}); "
                         "drop --series-embedding")
    members = [GRURegressor(cfg, n_inputs, lookback, horizon, season, known, ahead_only, observed_scale, wide,
                            reads=reads, n_series=n_series)
               for reads in cfg.member_lookbacks(lookback, season)]
    return members[0] if len(members) == 1 else Ensemble(members)


def members_of(model: GRURegressor | Ensemble) -> list[GRURegressor]:
    return list(model.members) if isinstance(model, Ensemble) else [model]


class GRURegressor(nn.Module):
    """FusedGRU over the lookback window, then a linear head emitting all H steps at once.

    Input (B, L, C): column 0 the scaled target, the rest scaled features. The network
    always sees the target relative to the last value of its window; it forecasts
    - `window_norm="last"`: the change from the last observation (keeps the forecast in
      range when a trend leaves the training levels);
    - `window_norm="seasonal"`: a correction to the seasonal naive forecast of the window
      (its last season repeated), which it starts from;
    - `window_norm="none"`: raw values in, raw values out.
    With `window_scale="diff"` the target is also divided by the window's own amplitude,
    the mean absolute (seasonal) difference inside it, and the head's output multiplied
    back: a quiet window and a wild one look alike to the network, and a loss taken in
    these units (`window_scale_of`) is the window's MASE-like error.

    Every choice comes from `ModelConfig` (its fields' help says what each does):
    `base_seasons=K` starts the seasonal forecast from the mean of the window's last K
    seasons instead of the last one alone: a calmer base for long horizons.
    `linear_path` adds a linear path (DLinear's linear map) from the L normalised target
    values straight to the H outputs, beside the GRU's head; it starts at zero, so the
    model starts as the GRU alone. A 64-unit GRU squeezes a long window into 64 numbers;
    the linear path keeps every lag in reach.
    `second_season=M` (e.g. 168, a week of hours) lets the GRU choose its base window by
    window and step by step: a softmax, set from its last state, weighs the base against
    the naive forecast of season M (and the last season's naive when the base is a mean of
    seasons). Monday follows Sunday: the last day is the wrong base for it, last Monday is
    the right one, and the network reads which day comes from the window.
    Quantiles (`--level`, `--quantiles`): the median is the point forecast above; the
    others are the median plus offsets in the window's own units, each side a cumulative
    sum of softplus increments moving away from the median, so they never cross, whatever
    the weights and the input. The quantile head reads the GRU's state and the median
    detached: the pinball loss trains the head alone, and the point forecast is the same
    function, trained the same way, as without quantiles.
    Known-future covariates (the columns `known`: `--future-features`, calendar, holidays)
    enter over the horizon through a linear map from each step's values and their change
    since the row its base forecast comes from (the same point of the last season: the
    base is last Monday's 9:00, so what moves 9:00 today is how its load forecast differs
    from last Monday's) to a correction in the window's units, shared by the steps, each
    step from its own values; with `known_map="horizon"` the future features (`wide`)
    instead go through one map from every step's values to every step (the whole day's
    load profile sets each hour, as in LEAR, the electricity-price regression), the
    calendar still through the step map. Both start at zero: the model starts as the one
    without them. With `known_units="series"` the future features' share of either map is
    added in the series' scaled units rather than multiplied by the window's amplitude (the
    same covariate change moves the target alike in a calm window and a wild one). The GRU
    reads the calendar columns over the lookback too, and not the future features
    (`ahead_only`): reading their past overfit (docs/model.md, Covariates).
    `reads`: the member reads only the last `reads` steps of each window it is given (an
    ensemble's members, `--lookback-spread`: `ModelConfig.member_lookbacks`); it is then
    exactly the regressor of that lookback, the steps before ignored.
    `series_embedding=True` learns each training series' own initial GRU state (`n_series`
    of them, zero at the start: the model starts as the one without); the windows then
    carry one more column after the others, the index of their series (`train.gather`,
    `Forecaster._inputs`), which the model takes off before anything else reads them.
    `by_season=True` makes the GRU read the window a season per step: a 168-hour window
    of a 24-hour season is 7 steps of 24 values (each step all channels of a season's
    points, the oldest L mod m points dropped). Seven recurrent steps instead of 168 (the
    same input projection, one big product) train 5-8x faster, and the same hour a week
    back is 6 steps away instead of 144, so the GRU compares days rather than hours.
    """

    def __init__(self, cfg: ModelConfig, n_inputs: int, lookback: int, horizon: int,
                 season: int = 1, known: tuple[int, ...] = (), ahead_only: tuple[int, ...] = (),
                 observed_scale: bool = False, wide: tuple[int, ...] = (), reads: int | None = None,
                 n_series: int = 1) -> None:
        super().__init__()
        self.cfg, self.season, self.horizon = cfg, season, horizon
        # The last `reads` steps of each window are this member's (`ModelConfig.member_lookbacks`).
        lookback = self.reads = lookback if reads is None else reads
        # True: the last input column is the mask of padding (1 observed, 0 padded), and the
        # window scale is measured on the observed points (`window_scale_of`).
        self.observed_scale = observed_scale
        self.by_season = cfg.reads_by_season(season, lookback)  # the rule, applied to these shapes
        self.known = list(known)
        read = [c for c in range(n_inputs) if c not in ahead_only]  # the GRU's input columns
        width = len(read) * (season if self.by_season else 1)  # the GRU's input: a season of points per step
        # A slice where it reads them all: indexing with a list copies the window.
        self.read = read if len(read) < n_inputs else slice(0, n_inputs)
        self.gru = FusedGRU(width, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout, batch_first=True)
        self.head = nn.Linear(cfg.hidden_size, horizon)
        # Both start at zero: no linear contribution, equal weights for the bases.
        self.linear = _zeroed(nn.Linear(lookback, horizon)) if cfg.linear_path else None
        # The bases the GRU chooses between: the base, the second season's naive and, when the
        # base is a mean of seasons, the last season's naive too.
        n_bases = 2 + (cfg.base_seasons > 1)
        gated = (cfg.second_season or 0) > 1 and cfg.window_norm == "seasonal"
        self.gate = _zeroed(nn.Linear(cfg.hidden_size, (n_bases - 1) * horizon)) if gated else None
        # known_map "horizon": the columns `wide` (the future features) through one map from
        # every step to every step; the others (calendar, holidays) through the step map.
        # Unresolved (None, before the validation choice in forecaster._fit_candidates): step.
        self.wide = [j for j, c in enumerate(self.known) if c in wide] if cfg.known_map == "horizon" else []
        self.narrow = [j for j in range(len(self.known)) if j not in self.wide]
        # The step map's inputs (each column's value, then its change) that are future
        # features, whose share is added in the series' units with `known_units="series"`.
        # Unresolved (None, before the validation choice): series.
        theirs = [float(cfg.known_units != "window" and self.known[j] in wide) for j in self.narrow]
        self.register_buffer("narrow_series", torch.tensor(theirs * 2), persistent=False)
        self.any_narrow_series = any(theirs)
        self.known_path = None  # (2 F) -> 1, shared by the steps
        self.wide_path = None  # (H 2 F) -> H
        with torch.random.fork_rng(devices=[]):  # the other layers draw as without them
            if self.narrow:
                self.known_path = _zeroed(nn.Linear(2 * len(self.narrow), 1))
            if self.wide:
                self.wide_path = _zeroed(nn.Linear(2 * len(self.wide) * horizon, horizon))
        self.series_state = None  # (S, layers x hidden): each series' initial state
        if cfg.series_embedding:
            with torch.random.fork_rng(devices=[]):
                self.series_state = nn.Embedding(n_series, cfg.num_layers * cfg.hidden_size)
            nn.init.zeros_(self.series_state.weight)
        qs = cfg.output_quantiles
        self.quantiles, self.median = qs, qs.index(0.5)
        self.spread = None  # zeroed: the increments start softplus(0) = 0.69 window units apart
        if len(qs) > 1:
            with torch.random.fork_rng(devices=[]):  # its init draws must not move the next member's
                self.spread = _zeroed(nn.Linear(cfg.hidden_size, (len(qs) - 1) * horizon))
            # increments (Q - 1) -> signed offsets (Q): below the median, minus the sum of the
            # increments from it down to the quantile; above, the sum from it up; 0 at it
            m, Q = self.median, len(qs)
            signs = torch.zeros(Q - 1, Q)
            for j in range(Q):
                if j < m:
                    signs[j:m, j] = -1.0
                elif j > m:
                    signs[m:j, j] = 1.0
            self.register_buffer("cumulate", signs, persistent=False)
            # from a list, not arange(Q) == m: under the meta device (artifact._rebuild's shape
            # check) a comparison goes through torch's prims wrappers, which import
            # torch._dynamo: 0.6-0.9 s of every cold `predict`
            self.register_buffer("is_median", torch.tensor([j == m for j in range(Q)]), persistent=False)

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:  # (B, L, C), (B, H, F) -> (B, H, Q)
        x, h0 = self._series(x[:, -self.reads:])
        point, h, scale = self._point(x, future, h0)
        if self.spread is None:
            return point.unsqueeze(-1)
        steps = nn.functional.softplus(self.spread(h.detach())).view(x.shape[0], self.horizon, -1)
        offsets = steps @ self.cumulate  # (B, H, Q): cumulative, so ordered
        point = point.unsqueeze(-1)
        quantiles = point.detach() + scale.unsqueeze(-1) * offsets
        return torch.where(self.is_median, point, quantiles)  # the median keeps its gradient

    def point(self, x: Tensor, future: Tensor | None = None) -> Tensor:  # (B, L, C) -> (B, H)
        x, h0 = self._series(x[:, -self.reads:])
        return self._point(x, future, h0)[0]

    def _series(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """The window without its series column, and the GRU's initial state (layers, B,
        hidden) of each window's series; (x, None) without `series_embedding`."""
        if self.series_state is None:
            return x, None
        h0 = self.series_state(x[:, -1, -1].long())  # (B, layers x hidden)
        return x[..., :-1], h0.view(x.shape[0], self.cfg.num_layers, -1).transpose(0, 1).contiguous()

    def _point(self, x: Tensor, future: Tensor | None = None,
               h0: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(B, H) the point forecast, (B, hidden) the GRU's last state and (B, 1) the
        window's scale (`_scale`)."""
        if self.cfg.window_norm == "none":
            _, h = self.gru(self._steps(x[..., self.read]), h0)
            in_window, in_series = self._ahead(x, future)  # no window scale: the same units
            return self.head(h[-1]) + self._linear(x[..., 0]) + in_window + in_series, h[-1], self._scale(x)
        last = x[:, -1:, 0]  # (B, 1)
        scale = self._scale(x)  # (B, 1)
        z = (x[..., 0] - last) / scale  # (B, L)
        _, h = self.gru(self._steps(torch.cat([z.unsqueeze(-1), x[..., 1:]], dim=-1)[..., self.read]), h0)  # h: (layers, B, hidden)
        base = self.base(x) if self.gate is None else self._gated_base(x, h[-1])
        in_window, in_series = self._ahead(x, future)
        return base + scale * (self.head(h[-1]) + self._linear(z) + in_window) + in_series, h[-1], scale

    def _ahead(self, x: Tensor, future: Tensor | None) -> tuple[Tensor | float, Tensor | float]:
        """(B, H) twice: each step's correction from its known columns `future` (B, H, F),
        the part in the window's units and the part in the series' (`--known-units
        series`: the future features' share of the maps; the calendar's stays in the
        window's units, where it measured better)."""
        if not self.known:
            return 0.0, 0.0
        if future is None or future.shape[1:] != (self.horizon, len(self.known)):
            raise ValueError(f"this model needs its {len(self.known)} known-future columns over {self.horizon} steps")
        values = torch.stack([future, future - self._at_base(x)[..., self.known]], -2)  # (B, H, 2, F)
        in_window, in_series = 0.0, 0.0
        if self.narrow:  # (B, H, 2 F') -> (B, H): the map is linear, so it splits by input
            v, path = values[..., self.narrow].flatten(2), self.known_path
            theirs = self.narrow_series.to(v.dtype)
            in_window = nn.functional.linear(v, path.weight * (1 - theirs), path.bias).squeeze(-1)
            if self.any_narrow_series:
                in_series = nn.functional.linear(v, path.weight * theirs).squeeze(-1)
        if self.wide:  # (B, H 2 F') -> (B, H): the future features alone
            out = self.wide_path(values[..., self.wide].flatten(1))
            if self.cfg.known_units == "window":
                in_window = in_window + out
            else:
                in_series = in_series + out
        return in_window, in_series

    def point_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the quantile head's: clipped on their own (`train.fit`), so
        the point forecast trains exactly as without quantiles."""
        spread = {id(p) for p in self.spread.parameters()} if self.spread is not None else set()
        return [p for p in self.parameters() if id(p) not in spread]

    def _steps(self, seq: Tensor) -> Tensor:
        """What the GRU reads: (B, L, C) as it is, or by season (B, L // m, m * C)."""
        if not self.by_season:
            return seq
        B, L, C = seq.shape
        n = L // self.season
        if n < 1:
            raise ValueError(f"reading by season needs a window of at least {self.season} steps, not {L}")
        return seq[:, L - n * self.season:].reshape(B, n, self.season * C)

    def _at_base(self, x: Tensor) -> Tensor:
        """(B, H, C): the window's row each step's base forecast comes from (the same point
        of the last season, or the last row without a season)."""
        L, m = x.shape[1], self.season
        if self.cfg.window_norm != "seasonal" or m < 2 or L < m:
            return x[:, -1:].expand(-1, self.horizon, -1)
        return x[:, last_season(L, m, self.horizon, x.device)]

    def _linear(self, z: Tensor) -> Tensor | float:
        return 0.0 if self.linear is None else self.linear(z)

    def window_scale_of(self, x: Tensor) -> Tensor:
        """(B, 1): the amplitude each window (as the model is given it) is divided by."""
        return self._scale(x if self.series_state is None else x[..., :-1])

    def _scale(self, x: Tensor) -> Tensor:
        """(B, 1): the amplitude each window is divided by; ones without window scaling.

        The mean absolute difference at the lag of the base forecast (the season for
        `seasonal`, 1 for `last`): the denominator of MASE, measured on the window alone.
        Floored at a tenth of the window's spread (mean absolute deviation), so a window
        that repeats its season exactly is not blown up, and at `scale_floor` (values are
        already scaled per series; default 1e-3) so a nearly flat one stays finite. A flat
        one (every observed value equal) takes its series' scale, 1 (`flat_scale`): at
        the floor, a run of zeros in intermittent counts weighed 1,000 times a normal
        window in the loss and in the conformal scores, and the 95% conformal shift made
        from them widened every other window's band a thousandfold. A padded
        window (a short series: its padding repeats the first value) is measured on its
        observed points alone (the mask channel): measured with the padding's zero
        differences it weighed up to 1 / scale_floor times a normal window in the loss and
        in the conformal scores (M3 yearly: a training loss of 330 against a validation
        loss of 4), and the development split's yearly sMAPE went from 21.38 to 19.85.
        """
        if self.cfg.window_scale == "none" or self.cfg.window_norm == "none" or x.shape[1] < 2:
            return x.new_ones(x.shape[0], 1)
        seasonal = self.cfg.window_norm == "seasonal" and 1 < self.season < x.shape[1]
        lag = self.season if seasonal else 1
        v = x[..., 0]
        # Padded windows: only the observed points count (the padding repeats the first
        # value, so its differences are zeros that would shrink the scale).
        seen = x[..., -1] if self.observed_scale else torch.ones_like(v)
        pairs = seen[:, lag:] * seen[:, :-lag]
        n_pairs = pairs.sum(1, keepdim=True)
        diff = ((v[:, lag:] - v[:, :-lag]).abs() * pairs).sum(1, keepdim=True) / n_pairs.clamp_min(1)
        n = seen.sum(1, keepdim=True).clamp_min(1)
        spread = ((v - (v * seen).sum(1, keepdim=True) / n).abs() * seen).sum(1, keepdim=True) / n
        scale = torch.maximum(diff, 0.1 * spread).clamp_min(self.cfg.scale_floor)
        # A window with no observed pair at the lag has no amplitude of its own: 1, the
        # series' standard deviation under the default scaler (one data unit with
        # `--scaler none`; before observed scales, the floor). Nor has a flat one (every
        # observed value the same, to the bit: a run of zeros in intermittent counts).
        own = n_pairs > 0
        if self.cfg.flat_scale:
            top = torch.where(seen > 0, v, -torch.inf).amax(1, keepdim=True)
            own = own & (top > torch.where(seen > 0, v, torch.inf).amin(1, keepdim=True))
        return torch.where(own, scale, torch.ones_like(scale))

    def base(self, x: Tensor) -> Tensor:
        """The forecast the head corrects: the last value, or the mean of the last
        `base_seasons` seasons (the last season alone by default) repeated."""
        L, m = x.shape[1], self.season
        if self.cfg.window_norm != "seasonal" or m < 2 or L < m:
            return x[:, -1:, 0]
        k = min(self.cfg.base_seasons, L // m)
        profile = x[:, L - k * m:, 0].reshape(x.shape[0], k, m).mean(1)  # (B, m)
        return profile[:, torch.arange(self.horizon, device=x.device) % m]  # (B, H)

    def _gated_base(self, x: Tensor, h: Tensor) -> Tensor:
        """(B, H): the bases weighted step by step by a softmax the GRU's state sets (the
        first base's logit fixed at 0: with two bases the second's weight is a sigmoid)."""
        bases = [self.base(x).expand(-1, self.horizon), self._repeat(x, self.cfg.second_season)]
        if self.cfg.base_seasons > 1:
            bases.append(self._repeat(x, self.season))
        logits = self.gate(h).view(x.shape[0], len(bases) - 1, self.horizon)
        weights = torch.softmax(torch.cat([torch.zeros_like(logits[:, :1]), logits], 1), dim=1)
        return (weights * torch.stack(bases, 1)).sum(1)

    def _repeat(self, x: Tensor, m: int) -> Tensor:
        """(B, H): the window's last m values repeated: the naive forecast of season m."""
        L = x.shape[1]
        if L < m:
            raise ValueError(f"a season of {m} needs a window of at least {m} steps, not {L}")
        return seasonal_naive(x[..., 0], m, self.horizon)


def last_season(L: int, m: int, horizon: int, device) -> Tensor:
    """(H,): the window row each step repeats in the naive forecast of season m."""
    return torch.arange(horizon, device=device) % m + (L - m)


def seasonal_naive(target: Tensor, season: int, horizon: int) -> Tensor:
    """(B, L) -> (B, H): each window's last season repeated (its last value without a
    season, or when the window is shorter than one): the model's base and the
    forecaster's `--naive-weight` combine with it."""
    L = target.shape[1]
    if season < 2 or L < season:
        return target[:, -1:].expand(-1, horizon)
    return target[:, last_season(L, season, horizon, target.device)]


def _zeroed(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Ensemble(nn.Module):
    """K regressors of the same shape from different initial weights, trained side by side
    on the same batches (`train.fit`); the forecast is their median (the mean for K = 2),
    which cancels much of the variance one initialisation leaves in a forecast."""

    def __init__(self, members: list[GRURegressor]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.quantiles, self.median = members[0].quantiles, members[0].median

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:  # (B, L, C) -> (B, H, Q)
        # Quantile by quantile: the median of ordered values keeps them ordered.
        return torch.stack([m(x, future) for m in self.members]).quantile(0.5, dim=0)

    def window_scale_of(self, x: Tensor) -> Tensor:
        return self.members[0].window_scale_of(x)  # a function of x alone, the same for all
