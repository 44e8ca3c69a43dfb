"""The settings a user chooses, and their fields as options, defined once.

Holds `ModelConfig` (the network's architecture) and `TrainConfig` (the optimiser). Every
setting a user can choose is a field of a frozen config dataclass (these two, and
`data.DataSpec`, `windows.WindowConfig`), declared with `option()`:
its default, its help text and, for stored configs, the value it stands for when a file
written before the field existed lacks it. From those fields this module builds the Typer
options of `train` and `backtest` (`with_config_options`), the configs from a command's
keyword arguments or a batch job's flat keys (`build_configs`), stored configs from an
artifact's meta (`from_stored`), and the rows `gruforecast info` prints (`describe`).
So a new option is one field and its use. No torch here: configs are built and
checked before torch is imported.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Annotated, Any

from .errors import InputError


def option(default, help: str, absent=None, least=None, most=None):
    """A config field with its CLI help. `absent`: what a stored config written before the
    field existed stands for (default: the field's default). `least` / `most`: the range
    of a number (`check_range` enforces it; the help and docs show it). Every size has a
    `most`, so no option can ask for memory or time without bound."""
    meta: dict[str, Any] = {"help": help}
    if absent is not None:
        meta["absent"] = absent
    if least is not None:
        meta["least"] = least
    if most is not None:
        meta["most"] = most
    return field(default=default, metadata=meta)


def check_range(config) -> None:
    """Refuse a number outside its field's `least` / `most` (None: left to the data)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if "least" in f.metadata and not value >= f.metadata["least"]:
            raise InputError(f"{flag(f.name)} ({value}) must be >= {f.metadata['least']}")
        if "most" in f.metadata and not value <= f.metadata["most"]:
            raise InputError(f"{flag(f.name)} ({value}) must be <= {f.metadata['most']:,} "
                             "(its limit: docs/cli.md)")


def _help(f: Field) -> str:
    """A field's help, with its range when it has one."""
    lo, hi = f.metadata.get("least"), f.metadata.get("most")
    if lo is None and hi is None:
        return f.metadata["help"]
    shown = f"{lo if lo is not None else ''}..{f'{hi:,}' if hi is not None else ''}"
    return f"{f.metadata['help']} [{shown}]"


def option_fields(cls) -> list[Field]:
    """The fields of a config declared with `option()`: each one a CLI option and key."""
    return [f for f in fields(cls) if "help" in f.metadata]


def _is_tuple(tp) -> bool:
    return typing.get_origin(tp) is tuple


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def with_config_options(*classes, exclude: tuple[str, ...] = ()):
    """Decorate a Typer command: append every option field of `classes` to its signature
    as a keyword option. The command receives them in `**config`."""

    def decorate(command):
        sig = inspect.signature(command)
        annotations = dict(typing.get_type_hints(command, include_extras=True))
        params = [p.replace(annotation=annotations.get(p.name, p.annotation))
                  for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        for cls in classes:
            hints = typing.get_type_hints(cls)
            for f in option_fields(cls):
                if f.name in exclude:
                    continue
                annotation, default = _typer_param(f, hints[f.name])
                params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                                default=default, annotation=annotation))
                annotations[f.name] = annotation

        @functools.wraps(command)
        def wrapper(**kwargs):
            return command(**kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = annotations
        del wrapper.__wrapped__  # Typer must read the new signature, not the original's
        return wrapper

    return decorate


def _typer_param(f: Field, tp) -> tuple[Any, Any]:
    import typer

    help_ = _help(f)
    default = f.default if f.default is not MISSING else None
    if _is_tuple(tp):  # a list: comma-separated on the command line
        return Annotated[str | None, typer.Option(flag(f.name), help=help_ + " (comma-separated)")], (
            ",".join(map(_show, default)) or None)
    if tp is bool or set(typing.get_args(tp)) == {bool, type(None)}:  # a flag, maybe unset
        return Annotated[tp, typer.Option(f"{flag(f.name)}/{_no(f.name)}", help=help_)], default
    return Annotated[tp, typer.Option(flag(f.name), help=help_)], default


def _no(name: str) -> str:
    return "--no-" + name.replace("_", "-")


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _convert(value, tp, name: str = ""):
    """A list from "a, b" (the CLI), a list (TOML, JSON) or None, as a tuple of the
    field's element type; "none" (any case) is the empty list."""
    if not _is_tuple(tp):
        return value
    if isinstance(value, str):
        value = [] if value.strip().lower() == "none" else [v.strip() for v in value.split(",") if v.strip()]
    kind = typing.get_args(tp)[0]
    try:
        return tuple(kind(v) for v in value or ())
    except (TypeError, ValueError):
        raise InputError(f"{flag(name)} {value!r} is not a list of {kind.__name__}s; give them "
                         f"comma-separated, e.g. {flag(name)} {_example(kind)}") from None


def _example(kind) -> str:
    return {float: "80,95", int: "1,2"}.get(kind, "a,b")


def build_configs(values: dict, *classes) -> list:
    """One config of each class from flat keyword values (CLI options or batch keys); a
    field missing from `values` keeps its default."""
    built = []
    for cls in classes:
        hints = typing.get_type_hints(cls)
        kwargs = {f.name: _convert(values[f.name], hints[f.name], f.name) for f in fields(cls) if f.name in values}
        built.append(cls(**kwargs))
    return built


def key_types(*classes) -> dict[str, Any]:
    """Field name -> type of every option field (the keys a batch job may set)."""
    out = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        out.update({f.name: hints[f.name] for f in option_fields(cls)})
    return out


def from_stored(cls, stored: dict):
    """Rebuild a config from its stored dict: keys it lacks take their `absent` value
    (what files written before that field existed did); unknown keys are dropped."""
    names = {f.name: f for f in fields(cls)}
    kwargs = {k: v for k, v in stored.items() if k in names}
    for name, f in names.items():
        if name not in kwargs and "absent" in f.metadata:
            kwargs[name] = f.metadata["absent"]
    hints = typing.get_type_hints(cls)
    return cls(**{k: _convert(v, hints[k], k) for k, v in kwargs.items()})


def describe(config) -> str:
    """'hidden_size 64, num_layers 1, ...': every field of a config, for `info`."""
    def show(v):
        return ", ".join(map(_show, v)) or "-" if isinstance(v, tuple) else ("-" if v is None else v)
    return ", ".join(f"{f.name} {show(getattr(config, f.name))}" for f in fields(config))


def interval_pairs(quantiles) -> list[tuple[float, float, float]]:
    """(level in percent, lower q, upper q) for each pair q, 1 - q among `quantiles`,
    the narrowest level first: the intervals a set of quantiles holds."""
    have = {round(q, 10) for q in quantiles}
    return [(round(100 * (1 - 2 * q), 8), q, round(1 - q, 10))
            for q in sorted(have, reverse=True) if q < 0.5 and round(1 - q, 10) in have]


def _bounds(level: float) -> tuple[float, float]:
    """The quantiles that bound a central interval of `level` percent: 80 -> 0.1, 0.9."""
    return round((100 - level) / 200, 10), round((100 + level) / 200, 10)


LOSSES = ("mae", "mse", "huber")
WINDOW_NORMS = ("seasonal", "last", "none")
WINDOW_SCALES = ("diff", "none")
INTERVALS = ("conformal", "model")
KNOWN_MAPS = ("step", "horizon")
KNOWN_UNITS = ("series", "window")
SAMPLE_BY = ("window", "series")


@dataclass(frozen=True)
class ModelConfig:
    """The network's architecture. Stored in the model artifact, which rebuilds the model
    from it (`build_model(ModelConfig(**stored), ...)`)."""

    hidden_size: int = option(64, "GRU hidden units", least=1, most=4096)
    num_layers: int = option(1, "GRU layers", least=1, most=16)
    dropout: float = option(0.0, "dropout between GRU layers (with --num-layers 2 or more)")
    window_norm: str = option(
        "seasonal", "what the network forecasts: seasonal (a correction to the seasonal naive; "
        "the last value when the season is 1), last (the change from the last value) or none")
    window_scale: str = option(
        "diff", "diff: divide each window by its mean absolute (seasonal) difference, so quiet "
        "and wild series weigh alike; none", absent="none")
    scale_floor: float = option(
        1e-3, "the smallest window amplitude (--window-scale diff), in scaled units (with "
        "--scaler standard, 0.1 is a tenth of the series' standard deviation); raise it where "
        "flat windows weigh too much in the loss", least=1e-6, most=1e6)
    base_seasons: int = option(
        1, "the seasonal base forecast is the mean of the window's last K seasons (1: the last "
        "season, seasonal naive)", least=1, most=1000)
    linear_path: bool = option(
        False, "add a linear map from the whole window to the horizon beside the GRU "
        "(DLinear's); helps long horizons")
    second_season: int | None = option(
        None, "a second season M (e.g. 168 hours, a week; <= the lookback): the network blends "
        "its naive forecast into the base, window by window; 0: none (default: the week of "
        "sub-daily data, the year of daily data, or detected for integer steps, where the "
        "history holds two and the lookback covers it)", absent=0, least=0, most=100_000)
    by_season: bool = option(
        True, "the GRU reads the window a season per step (a week of hours: 7 steps of 24 "
        "values); 5-8x faster to train here; needs a season of 2 or more that fits the "
        "lookback, else it reads step by step", absent=False)
    known_map: str | None = option(
        None, "how the --future-features correct the forecast: step (one linear map shared by "
        "the steps, from each step's values and their change since its base row) or horizon "
        "(one linear map from every step's values to every step: a day's whole load profile "
        "sets each hour); the calendar and holidays always go step by step (default: the one with the better validation MASE)",
        absent="step")
    known_units: str | None = option(
        None, "the units of the --future-features' correction: series (added in the "
        "series' scaled units, so a covariate moves the target as much in a calm window as in "
        "a wild one) or window (multiplied by the window's amplitude, as the GRU's own "
        "correction); the calendar and holidays always correct in the window's units (default: the "
        "one with the better validation MASE)", absent="window")
    read_repeating: bool = option(
        True, "the GRU reads, over the lookback, the calendar encodings that repeat alike in "
        "each of its steps when it reads by season (the hour of day, read a day per step: "
        "they tell it only the window's phase); --no-read-repeating leaves them to the "
        "forecast steps (better on 2 of 4 dated sets, 1% worse on electricity prices)",
        absent=True)
    series_embedding: bool = option(
        False, "learn an embedding of each series seen in training: the GRU's initial state, "
        "one per series, starting at zero (the model without it)", absent=False)
    ensemble: int | None = option(
        None, "train K models side by side from different initial weights and forecast their "
        "median (K times the training time; default: 5 where an epoch reads at most 1,400,000 "
        "points, fewer above, 1 above 3,500,000)", absent=1, least=1, most=64)
    lookback_spread: float = option(
        0.3, "ensemble members read windows of different lengths, as N-BEATS ensembles its "
        "lookbacks: member k of K reads the last f_k x lookback steps, f spread evenly from this "
        "fraction to 1 (never under two seasons, nor the second season); 1: all read the whole window",
        absent=1.0, least=0.01, most=1.0)
    naive_weight: float | None = option(
        None, "the seasonal naive forecast's weight in a combination with the network's, "
        "applied after training: every quantile moves with the median (0: the network alone; "
        "default: 0, 0.25 or 0.5, the best validation MASE, where the validation windows come "
        "from 20 series or more; else 0)", absent=0.0, least=0.0, most=1.0)
    level: tuple[float, ...] = option(
        (80.0, 95.0), "prediction interval levels in percent: columns lo-80, hi-80, ...; none: "
        "point forecasts only", absent=())
    quantiles: tuple[float, ...] = option(
        (), "quantiles to forecast, the general form of --level (e.g. 0.05,0.5,0.95): columns "
        "q0.05, ...; when given, --level is ignored", absent=())
    intervals: str = option(
        "conformal", "conformal: the quantile head widened, step by step, where the validation "
        "windows show it too narrow (conformalised quantile regression, outward only; the head "
        "alone when there are no validation windows); model: the quantile head as trained",
        absent="model")
    # Not an option: a window whose observed values are all equal (a run of zero sales)
    # takes its series' scale rather than `scale_floor` (`GRURegressor.window_scale_of`).
    # Files written before it used the floor, and forecast as they did.
    flat_scale: bool = field(default=True, metadata={"absent": False})
    # Resolved, not an option: the ensemble written holds the early-stopped fit's members
    # after the refit's (`TrainConfig.keep_fit`), each lookback twice; files before have none.
    fit_members: bool = field(default=False, metadata={"absent": False})

    def __post_init__(self) -> None:
        check_range(self)
        if not all(0 < v < 100 for v in self.level):
            raise InputError(f"--level {','.join(map(_show, self.level))}: every level must be a percentage "
                             "strictly between 0 and 100, e.g. --level 80,95 (or none)")
        if not all(0 < q < 1 for q in self.quantiles):
            raise InputError(f"--quantiles {','.join(map(_show, self.quantiles))}: every quantile must be "
                             "strictly between 0 and 1, e.g. --quantiles 0.05,0.5,0.95")
        if len(self.quantiles) > 99 or len(self.level) > 49:
            raise InputError("--quantiles takes at most 99 values and --level at most 49")
        if self.intervals not in INTERVALS:
            raise InputError(f"--intervals {self.intervals!r} is not known; use one of {', '.join(INTERVALS)}")
        if self.known_units is not None and self.known_units not in KNOWN_UNITS:
            raise InputError(f"--known-units {self.known_units!r} is not known; use one of {', '.join(KNOWN_UNITS)}")
        if self.known_map is not None and self.known_map not in KNOWN_MAPS:
            raise InputError(f"--known-map {self.known_map!r} is not known; use one of {', '.join(KNOWN_MAPS)}")
        if self.window_norm not in WINDOW_NORMS:
            raise InputError(f"--window-norm {self.window_norm!r} is not known; use one of {', '.join(WINDOW_NORMS)}")
        if self.window_scale not in WINDOW_SCALES:
            raise InputError(f"--window-scale {self.window_scale!r} is not known; use one of {', '.join(WINDOW_SCALES)}")
        if self.second_season is not None and (self.second_season < 0 or self.second_season == 1):
            raise InputError(f"--second-season ({self.second_season}) must be 0 (none) or a season of at least 2")
        if self.second_season and self.window_norm != "seasonal":
            raise InputError(f"--second-season blends seasonal bases and needs --window-norm seasonal "
                             f"(now {self.window_norm}); drop one of them")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"--dropout ({self.dropout}) must be in [0, 1)")

    @property
    def output_quantiles(self) -> tuple[float, ...]:
        """The quantiles the network emits, sorted, the median (the forecast) always among
        them: (0.5,) for a point model."""
        qs = self.quantiles or tuple(q for v in self.level for q in _bounds(v))
        return tuple(sorted({round(q, 10) for q in qs} | {0.5}))

    @property
    def columns(self) -> list[tuple[str, float]]:
        """(output column, quantile) beside `forecast`: lo-80 / hi-80 ... (Nixtla's names)
        from --level, q0.05 ... from --quantiles."""
        if self.quantiles:
            return [(f"q{_show(round(q, 10))}", round(q, 10)) for q in sorted(set(self.quantiles))]
        out = []
        for v in sorted(set(self.level)):
            lo, hi = _bounds(v)
            out += [(f"lo-{_show(v)}", lo), (f"hi-{_show(v)}", hi)]
        return out

    def reads_by_season(self, season: int, lookback: int) -> bool:
        """Whether the GRU reads by season: asked for, and a season of >= 2 steps that fits
        the window (otherwise it reads step by step, as without the option)."""
        return self.by_season and 2 <= season <= lookback

    def member_lookbacks(self, lookback: int, season: int) -> list[int]:
        """The steps each ensemble member reads, the last of its window (`--lookback-spread`):
        a fraction spread evenly from `lookback_spread` (the first member) to 1 (the last),
        never under two seasons (the least the default lookback holds: a member reading by
        season compares at least two) nor the second season its base may repeat."""
        k, least = self.ensemble or 1, max(2 * season, self.second_season or 0)
        fractions = [1.0] if k == 1 else [self.lookback_spread + (1.0 - self.lookback_spread) * j / (k - 1)
                                          for j in range(k)]
        reads = [min(lookback, max(least, round(f * lookback))) for f in fractions]
        return reads * 2 if self.fit_members else reads

    def describe(self, season: int, lookback: int) -> str:
        """'GRU reads 7 steps of 24' or 'GRU reads step by step', and the members' lookbacks
        where they differ: for the log and `info`."""
        reads = self.member_lookbacks(lookback, season)
        reads = reads[: len(reads) // 2] if self.fit_members else reads  # the fit's repeat the refit's
        spread = f"; members read the last {', '.join(map(str, reads))} steps" if len(set(reads)) > 1 else ""
        spread += "; the early-stopped fit's members beside the refit's" if self.fit_members else ""
        if self.reads_by_season(season, lookback):
            return f"GRU reads {lookback // season} steps of {season}{spread}"
        return "GRU reads step by step" + spread


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Stored in the model artifact."""

    epochs: int = option(50, "maximum epochs", least=1, most=100_000)
    batch_size: int = option(64, "windows per batch", least=1, most=1_000_000)
    lr: float = option(1e-3, "Adam learning rate")
    patience: int = option(8, "early stopping: epochs without a better validation loss", least=1,
                           most=100_000)
    clip: float = option(1.0, "gradient clipping: the largest gradient norm of each member")
    loss: str = option("mae", "mae, mse or huber, in each window's own units (see --window-scale)")
    windows_per_epoch: int | None = option(
        20_000, "train on this many randomly drawn windows per epoch (all when there are "
        "fewer): an epoch's time is bounded whatever the panel's size", absent=None, least=1,
        most=1_000_000_000)
    points_per_epoch: int | None = option(
        4_000_000, "an epoch reads at most this many points, windows x lookback: fewer windows "
        "than --windows-per-epoch where the lookback is long (4,000,000 is 20,000 windows up to "
        "a lookback of 200), so an epoch's time is bounded whatever the lookback; 0: no bound",
        absent=None, least=0, most=10**12)
    sample_by: str = option(
        "window", "how an epoch draws its training windows: window (every window alike, so a "
        "long series weighs more) or series (a series, then one of its windows: every series "
        "alike, as the per-series metrics weigh them)", absent="window")
    weight_decay: float = option(
        0.0, "AdamW's decoupled weight decay on the point forecast's weights (not the quantile "
        "head's): zero weights are the base forecast (the seasonal naive) and no covariate "
        "effect, so decay shrinks the network's corrections towards them", absent=0.0, least=0.0, most=10.0)
    ema_epochs: float = option(
        1.0, "the weights scored, kept and written are an exponential moving average of the "
        "trained ones over about this many epochs (Polyak averaging: steadier than the last "
        "step's weights); 0: the trained weights as they are", absent=0.0, least=0.0, most=1000.0)
    seed: int = option(0, "random seed: same seed, same numbers on CPU", least=0, most=2**32 - 1)
    average_every: int = option(
        8, "under torchrun, one model over the processes: the weights averaged over them every "
        "this many steps (1: the gradients at every step, DistributedDataParallel); see docs/scale.md",
        least=1, most=100_000)
    full_refit: bool = option(
        True, "after early stopping and the held-out scores, retrain on every point (the "
        "validation and test parts too) for the best epoch count, scaled by the windows they add to an "
        "epoch: the model written has seen "
        "the latest data", absent=False)
    keep_fit: bool = option(
        False, "with --full-refit, the model written forecasts the median of the refit's members and "
        "the early-stopped fit's: twice the members, no more training; better on seven development "
        "sets of twelve (short quarterly panels, tourism, M4 hourly, pedestrians), worse on four "
        "(electricity prices most: docs/model.md)", absent=False)

    def __post_init__(self) -> None:
        check_range(self)
        if not self.lr > 0:
            raise InputError(f"--lr ({self.lr}) must be > 0")
        if not self.clip > 0:
            raise InputError(f"--clip ({self.clip}) must be > 0")
        if self.sample_by not in SAMPLE_BY:
            raise InputError(f"--sample-by {self.sample_by!r} is not known; use one of {', '.join(SAMPLE_BY)}")
        if self.loss not in LOSSES:
            raise InputError(f"--loss {self.loss!r} is not known; use one of {', '.join(LOSSES)}")
        if self.keep_fit and not self.full_refit:
            raise InputError("--keep-fit keeps the early-stopped fit beside the refit, and --no-full-refit "
                             "writes that fit alone; drop one of them")

    def epoch_windows(self, lookback: int) -> int | None:
        """The windows an epoch draws at most (None: all): `windows_per_epoch`, fewer where
        `points_per_epoch` / lookback is less."""
        caps = [cap for cap in (self.windows_per_epoch,
                                self.points_per_epoch and max(1, self.points_per_epoch // lookback)) if cap]
        return min(caps) if caps else None


def options_markdown(*classes) -> str:
    """The options of `classes` as a Markdown table (docs/cli.md's generated part)."""
    rows = ["| option | default | what it does |", "|---|---|---|"]
    for cls in classes:
        for f in option_fields(cls):
            default = f.default
            default = ",".join(map(_show, default)) if isinstance(default, tuple) and default else default
            shown = ("-" if default in (None, ()) else f"`{flag(f.name)}`" if default is True else
                     f"`{_no(f.name)}`" if default is False else f"`{default}`")
            rows.append(f"| `{flag(f.name)}` | {shown} | {_help(f)} |")
    return "\n".join(rows)


def update_options_doc(path) -> bool:
    """Rewrite the generated block of docs/cli.md; True when it changed (`make docs`)."""
    from pathlib import Path

    from .data import DataSpec
    from .windows import WindowConfig

    path = Path(path)
    text = path.read_text()
    start, end = "<!-- options: generated by `make docs` -->", "<!-- /options -->"
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"{path} lacks the {start} ... {end} markers")
    table = options_markdown(DataSpec, WindowConfig, ModelConfig, TrainConfig)
    new = f"{head}{start}\n{table}\n{end}{tail}"
    path.write_text(new)
    return new != text
