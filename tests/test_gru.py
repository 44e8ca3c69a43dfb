"""FusedGRU against torch.nn.GRU (copied weights), gradcheck in float64, CUDA twins."""

import pytest
import torch

from gruforecast import native
from gruforecast.config import ModelConfig
from gruforecast.gru import FusedGRU, FusedGRUFunction, gru_cell_reference, use_native
from gruforecast.model import Ensemble, GRURegressor


def regressor(n_inputs, hidden, layers, horizon, season=1, lookback=None, window_norm="last",
              window_scale="none", by_season=False, **options):
    """A GRURegressor from the old keyword form: `lookback` given means a linear path."""
    cfg = ModelConfig(hidden_size=hidden, num_layers=layers, window_norm=window_norm,
                      window_scale=window_scale, by_season=by_season, linear_path=lookback is not None,
                      **options)
    return GRURegressor(cfg, n_inputs, lookback or 12, horizon, season)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine"))]


@pytest.fixture(params=["native", "torch"], autouse=True)
def loops(request):
    """Run every test with the compiled C loops and with the plain torch path."""
    if request.param == "native" and native.library() is None:
        pytest.skip("no C compiler or BLAS symbols: the native loops are not built here")
    use_native(request.param == "native")
    yield request.param
    use_native(True)


def _pair(input_size, hidden, layers, device, dtype=torch.float32):
    ref = torch.nn.GRU(input_size, hidden, layers, batch_first=True).to(device, dtype)
    ours = FusedGRU(input_size, hidden, layers).to(device, dtype)
    ours.load_state_dict(ref.state_dict())  # same names and shapes: loads unchanged
    return ref, ours


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_h0", [False, True])
def test_matches_torch_gru_outputs_and_every_gradient(device, layers, with_h0):
    torch.manual_seed(layers * 10 + with_h0)
    B, T, I, H = 5, 11, 3, 16
    ref, ours = _pair(I, H, layers, device)
    x = torch.randn(B, T, I, device=device, requires_grad=True)
    h0 = torch.randn(layers, B, H, device=device, requires_grad=True) if with_h0 else None
    out_r, h_r = ref(x, h0)
    out_o, h_o = ours(x, h0)
    torch.testing.assert_close(out_o, out_r, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_o, h_r, atol=1e-5, rtol=0)
    g_out, g_h = torch.randn_like(out_r), torch.randn_like(h_r)  # random upstream gradients
    inputs = [x] + ([h0] if with_h0 else [])
    grads_r = torch.autograd.grad((out_r * g_out).sum() + (h_r * g_h).sum(), inputs + list(ref.parameters()))
    grads_o = torch.autograd.grad((out_o * g_out).sum() + (h_o * g_h).sum(), inputs + list(ours.parameters()))
    names = ["x"] + (["h0"] if with_h0 else []) + [n for n, _ in ours.named_parameters()]
    for name, gr, go in zip(names, grads_r, grads_o):
        torch.testing.assert_close(go, gr, atol=1e-5, rtol=1e-5, msg=f"gradient of {name}")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_h0", [False, True])
def test_function_gradcheck_float64(seed, with_h0):
    torch.manual_seed(seed)
    T, B, I, H = 4, 3, 2, 5
    f64 = dict(dtype=torch.float64, requires_grad=True)
    x = torch.randn(T, B, I, **f64)  # the Function is time-major
    h0 = torch.randn(B, H, **f64) if with_h0 else torch.zeros(B, H, dtype=torch.float64)
    params = [torch.randn(3 * H, I, **f64), torch.randn(3 * H, H, **f64),
              torch.randn(3 * H, **f64), torch.randn(3 * H, **f64)]
    assert torch.autograd.gradcheck(FusedGRUFunction.apply, (x, h0, *params))
    # only the final state used (the regressor's case): the output's gradient is None
    assert torch.autograd.gradcheck(lambda *a: FusedGRUFunction.apply(*a)[1], (x, h0, *params))


def test_reference_cell_matches_torch_gru_cell():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(3, 7)
    x, h = torch.randn(4, 3), torch.randn(4, 7)
    got = gru_cell_reference(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(got, cell(x, h))


def test_inference_path_equals_training_path():
    torch.manual_seed(0)
    _, ours = _pair(2, 8, 2, "cpu")
    x = torch.randn(3, 9, 2)
    with torch.no_grad():
        out_eval, h_eval = ours(x)
    out_train, h_train = ours(x)
    torch.testing.assert_close(out_eval, out_train)
    torch.testing.assert_close(h_eval, h_train)


def test_skips_gradients_nobody_needs():
    torch.manual_seed(0)
    _, ours = _pair(2, 4, 1, "cpu")
    for p in ours.parameters():
        p.requires_grad_(False)
    ours.weight_hh_l0.requires_grad_(True)
    ours(torch.randn(2, 5, 2))[1].sum().backward()
    assert ours.weight_hh_l0.grad is not None and ours.weight_ih_l0.grad is None


def test_batch_first_false_and_dropout_between_layers():
    torch.manual_seed(0)
    ref = torch.nn.GRU(2, 6, 2, dropout=0.5)
    ours = FusedGRU(2, 6, 2, dropout=0.5, batch_first=False)
    ours.load_state_dict(ref.state_dict())
    ref.eval(), ours.eval()
    x = torch.randn(7, 3, 2)  # (T, B, I)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=0)
    ours.train()
    assert not torch.allclose(ours(x)[0], ref(x)[0], atol=1e-3)  # dropout is active


def test_regressor_window_norm_is_shift_equivariant():
    """With window_norm='last' a constant shift of the target input shifts the forecast."""
    torch.manual_seed(0)
    model = regressor(1, 8, 1, horizon=4).eval()
    x = torch.randn(2, 10, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x + 3.0), model(x) + 3.0, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm, extra", [("last", {}), ("seasonal", {}), ("last", {"lookback": 10}),
                                         ("seasonal", {"base_seasons": 3, "lookback": 10}),
                                         ("seasonal", {"second_season": 6}),
                                         ("seasonal", {"second_season": 6, "by_season": True})])
def test_regressor_window_scale_is_affine_equivariant(norm, extra):
    """With window_scale='diff', a window scaled by a > 0 and shifted by b gives the
    forecast scaled by a and shifted by b: the network sees every window in its own units
    (the linear path and a many-season base too)."""
    torch.manual_seed(0)
    model = regressor(1, 8, 1, horizon=4, window_norm=norm, season=3, window_scale="diff", **extra).eval()
    for part in (model.linear, model.gate):
        if part is not None:
            torch.nn.init.normal_(part.weight)  # it starts at zero; make it count here
    x = torch.randn(2, 10, 1, dtype=torch.float64)
    model.double()
    with torch.no_grad():
        torch.testing.assert_close(model(7.5 * x - 2.0), 7.5 * model(x) - 2.0, atol=1e-9, rtol=1e-9)
        assert not torch.allclose(model(7.5 * x), model(x))  # it is a real function of x
        lag = 3 if norm == "seasonal" else 1
        diff = (x[:, lag:, 0] - x[:, :-lag, 0]).abs().mean(1, keepdim=True)
        torch.testing.assert_close(model.window_scale_of(x), diff)  # random data: above the floor
        periodic = torch.tensor([0.0, 1.0, 2.0] * 4, dtype=torch.float64).view(1, 12, 1)
        floor = 0.1 * (periodic - 1).abs().mean()  # a tenth of the spread around the mean, 1
        expected = floor if norm == "seasonal" else torch.tensor(14 / 11, dtype=torch.float64)  # 11 |diffs|: 1, 1, 2, 1, 1, 2, ...
        torch.testing.assert_close(model.window_scale_of(periodic)[0, 0], expected.to(torch.float64))


@pytest.mark.parametrize("season", [1, 3])
def test_a_padded_window_is_scaled_by_its_observed_points(season):
    """With the mask channel, a window's scale ignores its padding (the first value
    repeated, mask 0): it is the scale of its observed points alone, which the padding's
    zero differences would shrink. A window with no observed pair at the lag gets 1, the
    series' own scale."""
    cfg = ModelConfig(hidden_size=4, window_norm="seasonal", window_scale="diff", by_season=False)
    padded_model = GRURegressor(cfg, 2, 12, 4, season, observed_scale=True).double()
    plain = GRURegressor(cfg, 1, 12, 4, season).double()
    torch.manual_seed(0)
    seen = torch.randn(3, 4, 1, dtype=torch.float64).cumsum(1)  # 4 observed points
    x = torch.cat([seen[:, :1].expand(-1, 8, -1), seen], 1)  # 8 padded rows first
    mask = torch.cat([torch.zeros(3, 8, 1), torch.ones(3, 4, 1)], 1).double()
    expected = GRURegressor(cfg, 1, 4, 4, season).double().window_scale_of(seen)
    torch.testing.assert_close(padded_model.window_scale_of(torch.cat([x, mask], -1)), expected)
    if season == 1:  # without the mask: 8 of the 11 differences are the padding's zeros
        torch.testing.assert_close(plain.window_scale_of(x), torch.maximum(expected * 3 / 11, 0.1 * _spread(x)))
    mask[:, :-1] = 0.0  # one observed point: no pair at any lag
    assert padded_model.window_scale_of(torch.cat([x, mask], -1)).tolist() == [[1.0]] * 3


def _spread(x):
    v = x[..., 0]
    return (v - v.mean(1, keepdim=True)).abs().mean(1, keepdim=True)


def test_regressor_by_season_reads_a_season_per_step():
    """by_season: the GRU reads (B, L // m, m * C), season by season in time order, each
    step holding the season's points with their channels side by side; the oldest L mod m
    points are not read. The result is exactly the GRU run on that sequence by hand."""
    torch.manual_seed(0)
    model = regressor(2, 8, 1, horizon=3, window_norm="seasonal", season=4, by_season=True).eval()
    assert model.gru.input_size == 8
    seq = torch.arange(20.0).view(1, 10, 2)  # 10 steps, 2 channels
    steps = model._steps(seq)
    assert steps.shape == (1, 2, 8)
    assert steps[0, 0].tolist() == list(range(4, 12)) and steps[0, 1].tolist() == list(range(12, 20))
    x = torch.randn(5, 10, 2, dtype=torch.float64)
    model.double()
    with torch.no_grad():
        scale = model.window_scale_of(x)  # 'none' here: ones
        z = torch.cat([((x[..., 0] - x[:, -1:, 0]) / scale).unsqueeze(-1), x[..., 1:]], -1)
        _, h = model.gru(z[:, 2:].reshape(5, 2, 8))
        torch.testing.assert_close(model.point(x), model.base(x) + model.head(h[-1]), atol=1e-12, rtol=0)
        changed = x.clone()
        changed[:, :2] += 5.0  # the unread oldest points (only the window scale would see them)
        torch.testing.assert_close(model(changed), model(x), atol=1e-12, rtol=0)
        changed[:, 2] += 5.0
        assert not torch.allclose(model(changed), model(x))
    with pytest.raises(ValueError, match="a window of at least 4 steps"):
        model(x[:, :3])
    assert not regressor(1, 8, 1, horizon=3, season=1, by_season=True).by_season  # step by step


def test_regressor_by_season_gradients_are_exact():
    """gradcheck through the season-folded GRU, the window scale and the gate."""
    torch.manual_seed(0)
    model = regressor(1, 4, 1, horizon=3, window_norm="seasonal", season=3, window_scale="diff",
                         second_season=6, by_season=True, level=()).double()  # the point path
    torch.nn.init.normal_(model.gate.weight)
    x = torch.randn(2, 9, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


def test_ensemble_forecasts_the_median_of_its_members():
    torch.manual_seed(0)
    members = [regressor(1, 4, 1, horizon=3) for _ in range(3)]
    x = torch.randn(5, 8, 1)
    with torch.no_grad():
        outs = torch.stack([m.eval()(x) for m in members])
        assert not torch.allclose(outs[0], outs[1])  # different initial weights
        torch.testing.assert_close(Ensemble(members).eval()(x), outs.median(0).values)
        torch.testing.assert_close(Ensemble(members[:2]).eval()(x), outs[:2].mean(0))


def test_regressor_seasonal_base_is_the_seasonal_naive_forecast():
    """With the head zeroed, window_norm='seasonal' forecasts the window's last season."""
    torch.manual_seed(0)
    model = regressor(1, 8, 1, horizon=5, window_norm="seasonal", season=3).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.arange(12.0).view(1, 12, 1)  # last season: 9, 10, 11
    with torch.no_grad():
        assert model.point(x).tolist() == [[9.0, 10.0, 11.0, 9.0, 10.0]]


def test_regressor_base_seasons_average_the_last_seasons():
    """base_seasons=K: the base is the mean of the window's last K seasons, by phase;
    K larger than the window holds is clamped to the seasons it holds."""
    x = torch.arange(12.0).view(1, 12, 1)  # seasons (0 1 2) (3 4 5) (6 7 8) (9 10 11)
    expected = {1: [9.0, 10.0, 11.0, 9.0, 10.0], 2: [7.5, 8.5, 9.5, 7.5, 8.5], 9: [4.5, 5.5, 6.5, 4.5, 5.5]}
    for k, want in expected.items():
        model = regressor(1, 8, 1, horizon=5, window_norm="seasonal", season=3, base_seasons=k)
        assert model.base(x).tolist() == [want]


def test_regressor_linear_path_starts_at_zero_and_learns():
    """The linear path adds nothing at first (the model is the GRU alone), then takes a
    gradient from the first step."""
    torch.manual_seed(0)
    plain = regressor(1, 8, 1, horizon=4, window_norm="seasonal", season=3, window_scale="diff")
    linear = regressor(1, 8, 1, horizon=4, window_norm="seasonal", season=3, window_scale="diff", lookback=10)
    linear.load_state_dict(plain.state_dict(), strict=False)
    x, y = torch.randn(6, 10, 1), torch.randn(6, 4)
    torch.testing.assert_close(linear(x), plain(x), atol=0, rtol=0)
    torch.nn.functional.mse_loss(linear.point(x), y).backward()
    assert linear.linear.weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError):  # a window of another length does not fit the map
        linear(torch.randn(6, 9, 1))


def test_regressor_second_season_blends_two_seasonal_naives():
    """second_season=M: the base moves from the first season's naive towards the naive of
    season M by a gate the GRU sets per step; halfway at the start, all the way when the
    gate is open."""
    model = regressor(1, 8, 1, horizon=4, window_norm="seasonal", season=2, second_season=6).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.arange(12.0).view(1, 12, 1)  # naive of season 2: 10 11 10 11; of season 6: 6 7 8 9
    with torch.no_grad():
        assert model.point(x).tolist() == [[8.0, 9.0, 9.0, 10.0]]
        torch.nn.init.constant_(model.gate.bias, 30.0)
        torch.testing.assert_close(model.point(x), torch.tensor([[6.0, 7.0, 8.0, 9.0]]))
        with pytest.raises(ValueError, match="a season of 6 needs a window of at least 6 steps"):
            model(x[:, :5])
    # With a base of 2 seasons, the last season's naive is a third choice: equal weights first.
    three = regressor(1, 8, 1, horizon=4, window_norm="seasonal", season=2, second_season=6, base_seasons=2)
    torch.nn.init.zeros_(three.head.weight)
    torch.nn.init.zeros_(three.head.bias)
    with torch.no_grad():  # mean of 2 seasons 9 10 9 10; season 6: 6 7 8 9; last season 10 11 10 11
        torch.testing.assert_close(three.point(x), torch.tensor([[25 / 3, 28 / 3, 9.0, 10.0]]))
    # Without a first season (integer steps, season 1) the base is the last value.
    no_season = regressor(1, 8, 1, horizon=4, window_norm="seasonal", season=1, second_season=3)
    torch.nn.init.zeros_(no_season.head.weight)
    torch.nn.init.zeros_(no_season.head.bias)
    with torch.no_grad():  # last value 11; season 3: 9 10 11 9
        torch.testing.assert_close(no_season.point(x), torch.tensor([[10.0, 10.5, 11.0, 10.0]]))
