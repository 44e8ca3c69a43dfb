"""Property-based tests (hypothesis) of the loader, the windows and the scalers on
generated frames: a correct result, checked against a simple reference, or our own error
type; never another exception."""

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gruforecast.data import DataSpec, build_panel
from gruforecast.errors import InputError
from gruforecast.scaling import SCALERS, fit_scaler
from gruforecast.train import Flat, gather
from gruforecast.windows import WindowConfig, make_windows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
value = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.sampled_from([0.0, 1e300, -1e300, 1e-300, np.nan]))


@st.composite
def frames(draw):
    n_series = draw(st.integers(1, 3))
    rows = []
    for k in range(n_series):
        n = draw(st.integers(1, 40))
        steps = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))  # dups, gaps, any order
        vals = draw(st.lists(value, min_size=n, max_size=n))
        rows += [{"id": f"s{k}", "t": s, "y": v} for s, v in zip(steps, vals)]
    frame = pd.DataFrame(rows)
    if draw(st.booleans()):
        frame["t"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(frame["t"], unit="h")
    return frame, draw(st.sampled_from([None, "interpolate", "ffill", "zero"]))


@SETTINGS
@given(frames())
def test_loader_is_right_or_says_why(case):
    frame, fill = case
    try:
        panel = build_panel(frame, DataSpec(target="y", time_col="t", id_col="id", fill=fill))
    except InputError:
        return
    assert not np.isnan(np.concatenate([s.values for s in panel.series])).any()
    for s in panel.series:
        rows = frame[frame["id"] == s.id].set_index("t")["y"]
        assert len(s.time) == len(set(s.time)) and s.time.is_monotonic_increasing
        assert set(rows.index) <= set(s.time)  # every input time is on the series' grid
        given_ = rows[rows.notna()]
        got = pd.Series(s.values[:, 0], index=s.time).loc[given_.index]
        np.testing.assert_array_equal(got.to_numpy(), given_.to_numpy())  # values kept as given


@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=120), st.integers(1, 30), st.integers(1, 10),
       st.sampled_from(SCALERS), st.sampled_from(["pad", "fail"]))
@example([0.0, 1.5457881115568424e-55, 1.0], 1, 1, "standard", "pad")  # a scale of 8e-56: an infinite target
def test_windows_match_a_direct_slice(ys, lookback, horizon, scaler, short):
    """Every window is the slice of the series before its origin; rows before the start
    (padding) repeat the first value and the mask channel marks them; targets never padded."""
    frame = pd.DataFrame({"t": np.arange(len(ys)), "y": ys})
    assume(not 0 < np.abs(ys).max() < 1e-30)  # refused by build_panel: too small for float32
    panel = build_panel(frame, DataSpec(target="y", time_col="t"))
    cfg = WindowConfig(lookback=lookback, horizon=horizon, scaler=scaler, short_series=short,
                       mask=short == "pad", transform="none")
    try:
        w, sc = make_windows(panel, cfg)
    except InputError:
        assert not cfg.fits(len(ys))
        return
    y = np.asarray(ys)
    for part in map(np.asarray, (w.train, w.val, w.test)):
        if not len(part):
            continue
        x, target, _ = gather(Flat.of(w), torch.from_numpy(part), lookback, horizon)
        o = int(part[0])
        assert o >= (1 if short == "pad" else lookback)
        idx = np.arange(o - lookback, o)
        np.testing.assert_allclose(x[0, :, 0].double().numpy() * sc.scale[0, 0] + sc.loc[0, 0],
                                   y[np.maximum(idx, 0)], rtol=1e-5, atol=1e-6 * max(1.0, np.abs(y).max()))
        if short == "pad":
            np.testing.assert_array_equal(x[0, :, 1].numpy(), (idx >= 0).astype(np.float32))
        o = int(part[-1])
        np.testing.assert_allclose(x[-1, :, 0].double().numpy() * sc.scale[0, 0] + sc.loc[0, 0],
                                   y[np.maximum(np.arange(o - lookback, o), 0)], rtol=1e-5,
                                   atol=1e-6 * max(1.0, np.abs(y).max()))
        np.testing.assert_allclose(target[-1].double().numpy() * sc.scale[0, 0] + sc.loc[0, 0],
                                   y[o: o + horizon], rtol=1e-5, atol=1e-6 * max(1.0, np.abs(y).max()))


@SETTINGS
@given(st.lists(st.floats(-1e12, 1e12), min_size=1, max_size=50), st.sampled_from(SCALERS))
def test_scalers_are_finite_and_invertible(xs, kind):
    x = np.asarray(xs, dtype=float)[:, None]
    loc, scale = fit_scaler(x, kind)
    assert np.isfinite(loc).all() and np.isfinite(scale).all() and (scale > 0).all()
    np.testing.assert_allclose((x - loc) / scale * scale + loc, x, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(x).max()))
