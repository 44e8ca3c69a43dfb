"""Batch forecasting from a TOML file of jobs, made for cron.

Holds: reading and validating the job file (`load_jobs`), the lock that keeps two runs of
one config apart (`config_lock`), running one job (`run_job`: retrain per policy, keep the
better model, forecast from the end of the data, write atomically) and running them all,
each isolated (`run_batch`). A job is a loop over the same train and predict functions as
the CLI, not a second pipeline: data is read by `data.load_panel` with the job's data
keys (`sep`, `decimal`, `fill`, ...), forecasts come from `Forecaster`. Nothing here
prints: events go to a callback.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import stat
import time
import tomllib
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np

from .atomic import FORECAST_SUFFIXES, MODEL_SUFFIXES, all_or_nothing, check_output_path
from .config import ModelConfig, TrainConfig, build_configs, key_types
from .data import DataSpec
from .errors import ConfigError, GruForecastError, InputError, LockedError
from .windows import WindowConfig

RETRAIN = ("never", "always", "older-than")
CONFIGS = (DataSpec, WindowConfig, ModelConfig, TrainConfig)


@dataclass(frozen=True)
class Job:
    """One job of the file. Its keys are these fields plus every option field of the
    configs (`DataSpec`: target, sep, ...; `WindowConfig`: horizon, ...; `ModelConfig`;
    `TrainConfig`: epochs, lr, ...), flat in the TOML, the same names as the CLI's options.
    A job holds out no test part (`test_frac` is 0): it trains on all it can."""

    name: str
    data: str
    model: str
    output: str
    retrain: str = "older-than"
    max_age: str = "7d"
    keep_better: bool = False
    timeout: str = "2h"  # a job running longer is stopped and recorded as failed
    future: str | None = None  # the future features' values after the data ({job}, {date} as in output)
    spec: DataSpec = field(default_factory=DataSpec)
    window: WindowConfig = field(default_factory=lambda: WindowConfig(test_frac=0.0))
    model_cfg: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.retrain not in RETRAIN:
            raise ConfigError(f"job {self.name!r}: retrain {self.retrain!r} is not known; use {', '.join(RETRAIN)}")
        parse_age(self.max_age, self.name)
        if parse_age(self.timeout, self.name, "timeout") <= 0:  # setitimer(0) is no limit at all
            raise ConfigError(f"job {self.name!r}: timeout {self.timeout!r} is no time at all; give the job a "
                              "duration to run for, like \"2h\"")
        # A name is one plain path component ({job} in output paths): never "..", never "/".
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", self.name):
            raise ConfigError(f"job name {self.name!r} must start with a letter or digit, then letters, "
                              "digits, '_', '.' or '-' (at most 100)")

    @classmethod
    def from_keys(cls, keys: dict) -> Job:
        """Split the flat keys of a job between the job and its configs."""
        own = {k: v for k, v in keys.items() if k in _OWN}
        spec, window, model_cfg, train = build_configs({**keys, "test_frac": 0.0}, *CONFIGS)
        return cls(**own, spec=spec, window=window, model_cfg=model_cfg, train=train)


@dataclass
class JobResult:
    name: str
    status: str  # "ok" or "failed"
    rows: int = 0
    output: str | None = None
    retrained: bool = False
    kept_old: str | None = None  # why the old model was kept, when it was
    mase: float | None = None  # the model's MASE on the latest validation window, if retrained
    seconds: float = 0.0
    error: str | None = None


_OWN = {k: v for k, v in typing.get_type_hints(Job).items()
        if k not in ("spec", "window", "model_cfg", "train")}
_TYPES = {**_OWN, **{k: v for k, v in key_types(*CONFIGS).items() if k != "test_frac"}}


def parse_age(text: str, job: str = "defaults", key: str = "max_age") -> float:
    """"7d", "12h", "30m", "45s" -> seconds."""
    m = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,9})?)\s*([smhdw])\s*", str(text))
    if not m:
        raise ConfigError(f"job {job!r}: {key} {text!r} is not a duration; write it like \"7d\", \"12h\" or \"30m\"")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def load_jobs(path: Path, overrides: dict | None = None, only: list[str] | None = None) -> list[Job]:
    """Read the job file; every problem is a `ConfigError` naming the key and its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not TOML
    except FileNotFoundError:
        raise ConfigError(f"job file {str(path)!r} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read job file {str(path)!r} ({exc}); check it") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc}); fix the file") from None
    except RecursionError:
        raise ConfigError(f"{path.name}: tables or arrays nested too deep to read; a job file is "
                          "[defaults] and [[jobs]] of flat keys") from None
    unknown = set(doc) - {"defaults", "jobs"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{path.name} line {_line(text, key)}: unknown table or key {key!r}; use [defaults] and [[jobs]]")
    defaults = doc.get("defaults", {})
    _check_keys(defaults, text, path.name, "[defaults]", None)
    for key, value in (overrides or {}).items():  # --set: checked as the file's keys are
        problem = _key_problem(key, value)
        if problem:
            raise ConfigError(f"--set {problem}")
    entries = doc.get("jobs", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path.name}: no [[jobs]]; add at least one job")
    jobs, names = [], set()
    for i, entry in enumerate(entries):
        _check_keys(entry, text, path.name, f"job {entry.get('name', i + 1)!r}", i)
        merged = {**defaults, **entry, **(overrides or {})}
        for key in ("name", "data", "model", "output"):
            if key not in merged:
                raise ConfigError(f"{path.name} line {_job_line(text, i)}: job {i + 1} has no {key!r}; add {key} = \"...\"")
        try:
            job = Job.from_keys(merged)
            output_path(job), future_path(job)  # the templates are checked now, so --dry-run sees their errors
            _check_extensions(job)
        except ConfigError as exc:
            raise ConfigError(f"{path.name} line {_job_line(text, i)}: {exc}") from None
        except InputError as exc:  # a config's own check (horizon = 0, scaler = "bogus", ...)
            raise ConfigError(f"{path.name} line {_job_line(text, i)}: job {merged['name']!r}: {exc}") from None
        if job.name in names:
            raise ConfigError(f"{path.name} line {_job_line(text, i)}: two jobs are named {job.name!r}; names must differ")
        names.add(job.name)
        jobs.append(_resolve_paths(job, path.parent))
    _check_writes(jobs, path.name)
    if only:
        missing = sorted(set(only) - names)
        if missing:
            raise ConfigError(f"--only {missing[0]!r}: no such job in {path.name}; jobs are {', '.join(sorted(names))}")
        jobs = [j for j in jobs if j.name in only]
    return jobs


def _check_keys(table: dict, text: str, file: str, where: str, job_index: int | None) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: {where} must be a table")
    for key, value in table.items():
        problem = _key_problem(key, value, f" in {where}")
        if problem:
            raise ConfigError(f"{file} line {_line(text, key, job_index)}: {problem}")


def _key_problem(key: str, value, where: str = "") -> str | None:
    """What is wrong with the job key `key = value` (unknown, or of the wrong type), or None."""
    if key not in _TYPES:
        close = _closest(key, list(_TYPES))
        return f"unknown key {key!r}{where}" + (f"; did you mean {close!r}?" if close else "")
    if not _type_ok(value, _TYPES[key]):
        return f"{key} = {value!r}{where} has the wrong type; expected {_shown_type(_TYPES[key])}"
    return None


def _shown_type(tp) -> str:
    """A key's type as a job file's author reads it ("a number (e.g. 0.25)", not
    "float | None": None is the key left out)."""
    if typing.get_origin(tp) is tuple:
        kind = typing.get_args(tp)[0]
        return "a list, like [80, 95]" if kind in (int, float) else 'a list, like ["a", "b"]'
    name = _type_name(tp)
    for kind, shown in (("bool", "true or false"), ("int", "a whole number (e.g. 3)"),
                        ("float", "a number (e.g. 0.25)"), ("str", 'text in quotes (e.g. "log")')):
        if kind in name:
            return shown
    return name


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) if isinstance(tp, type) else str(tp)


def _type_ok(value, tp) -> bool:
    annotation = _type_name(tp)
    if value is None:
        return "None" in annotation
    if typing.get_origin(tp) is tuple:  # a list of the element type, or "a,b" / "none"
        kind = typing.get_args(tp)[0]
        number = kind in (int, float)
        return isinstance(value, str) or isinstance(value, list) and all(
            isinstance(v, kind) or number and isinstance(v, int) and not isinstance(v, bool) for v in value)
    checks = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "tuple": isinstance(value, (list, str)) and all(isinstance(v, str) for v in value)}
    return any(ok for name, ok in checks.items() if name in annotation)


def _closest(key: str, candidates: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def _job_line(text: str, index: int) -> int:
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith("[[jobs]]")]
    return starts[index] if index < len(starts) else 0


def _line(text: str, key: str, job_index: int | None = None) -> int:
    """Line of `key = ...` (within the job's block when job_index is given, else the first)."""
    lines = text.splitlines()
    start = _job_line(text, job_index) if job_index is not None else 0
    for n in range(start, len(lines)):
        if n > start and job_index is not None and lines[n].strip().startswith("["):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[n]) or lines[n].strip() in (f"[{key}]", f"[[{key}]]"):
            return n + 1
    return 0


def _resolve_paths(job: Job, base: Path) -> Job:
    """Relative paths in the file are relative to the file's folder (cron's cwd is /)."""
    def absolute(p: str) -> str:
        return p if os.path.isabs(p) else str(base / p)
    return replace(job, data=absolute(job.data), model=absolute(job.model), output=absolute(job.output),
                   future=absolute(job.future) if job.future else None)


@contextmanager
def config_lock(config: Path, wait: float | None) -> Iterator[Path]:
    """Hold an exclusive flock on CONFIG.lock; the kernel releases it when we die."""
    lock_path = config.with_name(config.name + ".lock")
    try:  # never through a link planted there: it would truncate the link's target
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot use the lock file {str(lock_path)!r} ({exc.strerror}: a link or not "
                          "a file?); remove it") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"the lock file {str(lock_path)!r} is not a regular file; remove it")
    try:
        deadline = time.monotonic() + (wait or 0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait is None or time.monotonic() >= deadline:
                    raise LockedError(
                        f"another batch run holds the lock {str(lock_path)!r}; try again later or pass --wait SECONDS"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_path
    finally:
        os.close(fd)  # closing drops the flock


def _check_extensions(job: Job) -> None:
    """The output and the model file by their extensions, as `train --out` and
    `predict --out` take them: found when the job file is read, not by the job's run."""
    for key, path, suffixes in (("output", job.output, FORECAST_SUFFIXES), ("model", job.model, MODEL_SUFFIXES)):
        if Path(path).suffix.lower() not in suffixes:
            raise ConfigError(f"job {job.name!r}: {key} {path!r} has an unknown extension; use {' or '.join(suffixes)}")


def _check_writes(jobs: list[Job], file: str) -> None:
    """No file written twice, and no job's data overwritten or read back: two jobs writing
    one forecast (or two retraining one model) keep only the last one's, and an output
    under a job's data glob would be read as data by the next run."""
    readers = [(job, _reader(job.data)) for job in jobs]  # each data path looked at once
    writers: dict[str, str] = {}
    for job in jobs:
        written = [("output", output_path(job))] + ([("model", Path(job.model))] if job.retrain != "never" else [])
        for key, target in written:
            target = Path(os.path.normpath(target))
            if str(target) in writers:
                raise ConfigError(f"{file}: jobs {writers[str(target)]!r} and {job.name!r} both write "
                                  f"{str(target)!r}; give each job its own {key} (e.g. with {{job}} in the path)")
            writers[str(target)] = job.name
            reader = next((other for other, reads in readers if reads(target)), None)
            if reader is not None:
                raise ConfigError(f"{file}: job {job.name!r} writes its {key} {str(target)!r} where job "
                                  f"{reader.name!r} reads its data {reader.data!r}; write it elsewhere")


def _reader(data: str) -> Callable[[Path], bool]:
    """Whether a job whose `data` is this reads a path: the file, a match of its glob, or
    a Parquet part under its folder (`data.data_files`)."""
    data = os.path.normpath(data)
    if glob.has_magic(data):
        return lambda path: path.match(data)
    if os.path.isdir(data):
        return lambda path: path.suffix == ".parquet" and Path(data) in path.parents
    return lambda path: str(path) == data


def output_path(job: Job, today: date | None = None) -> Path:
    return _render(job, "output", job.output, today)


def future_path(job: Job, today: date | None = None) -> Path | None:
    """The job's future file, its {job} and {date} filled in as in `output`."""
    return _render(job, "future", job.future, today) if job.future else None


def _render(job: Job, key: str, template: str, today: date | None) -> Path:
    today = today or date.today()
    values = {"job": job.name, "date": today.isoformat()}

    def field(m: re.Match) -> str:
        if m.group(1) not in values:  # no format specs, attributes or indexes: plain names only
            raise ConfigError(f"job {job.name!r}: {key} {template!r} has the placeholder "
                              f"{{{m.group(1)}}}; use {{job}} and {{date}} only")
        return values[m.group(1)]

    rendered = re.sub(r"\{([^{}]*)\}", field, template)
    if "{" in rendered or "}" in rendered:
        raise ConfigError(f"job {job.name!r}: {key} {template!r} has an unmatched brace; use {{job}} and {{date}}")
    return Path(rendered)


def needs_retrain(job: Job, now: float | None = None) -> bool:
    model = Path(job.model)
    if job.retrain == "always":
        return True
    if job.retrain == "never":
        if not model.exists():
            raise InputError(f"model {job.model!r} does not exist and retrain is 'never'; train it or set retrain")
        return False
    return not model.exists() or (now or time.time()) - model.stat().st_mtime > parse_age(job.max_age, job.name)


def run_job(job: Job, on_event: Callable[[str, str, dict], None], today: date | None = None) -> JobResult:
    """Run one job; any `GruForecastError` becomes a failed result, never an escape."""
    start = time.perf_counter()
    result = JobResult(job.name, "failed")
    try:
        with _time_limit(parse_age(job.timeout, job.name, "timeout"), job):
            _run_job(job, result, on_event, today)
        result.status = "ok"
    except GruForecastError as exc:
        result.error = str(exc)
    except (OSError, RuntimeError, ValueError, MemoryError) as exc:  # isolate the other jobs
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = round(time.perf_counter() - start, 3)
    if result.status == "failed":
        on_event(job.name, "failed", {"error": result.error})
    return result


class JobTimeout(GruForecastError):
    exit_code = 1


@contextmanager
def _time_limit(seconds: float, job: Job) -> Iterator[None]:
    """Stop the job with `JobTimeout` after `seconds` (SIGALRM: also interrupts a blocked
    read). Only the main thread of a process gets signals; elsewhere no limit applies."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise JobTimeout(f"stopped after its timeout of {job.timeout}; raise timeout or make the job smaller")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_job(job: Job, result: JobResult, on_event, today) -> None:
    from . import artifact
    from .data import load_panel
    from .forecaster import few_windows_note, train, write_forecast
    from .windows import resolve

    on_event(job.name, "started", {})
    out, future = output_path(job, today), future_path(job, today)
    check_output_path(out, FORECAST_SUFFIXES, create=True,
                      inputs=(job.data, job.model, *((future,) if future else ())))
    retrain = needs_retrain(job)
    if retrain:
        panel, wcfg, mcfg = resolve(load_panel(job.data, job.spec), job.window, job.model_cfg, tcfg=job.train)
        run = train(panel, wcfg, mcfg, job.train)
        if note := few_windows_note(run.report["data"]["windows"]["val"]):
            on_event(job.name, "note", {"note": note})
        new_score = validation_score(run.forecaster, panel, wcfg)
        result.retrained, result.mase = True, new_score["mase"]
        art = run.forecaster
        if job.keep_better and Path(job.model).exists():
            old = artifact.load(job.model)
            old_score = validation_score(old, panel, wcfg)
            if old_score["mae"] is not None and new_score["mae"] is not None and new_score["mae"] > old_score["mae"]:
                result.kept_old = (f"new model's validation MAE {new_score['mae']:.4g} is worse than the old "
                                   f"model's {old_score['mae']:.4g} on the same window")
                art = old
    else:
        art = artifact.load(job.model)
        panel = load_panel(job.data, art.data_spec)
    if job.window.short_series == "skip":  # as `predict --short-series skip`: a new series does not stop the job
        panel, note = art.without_short(panel)
        if note:
            on_event(job.name, "skipped", {"note": note})
    fc = art.predict(panel, future=future)
    with all_or_nothing():  # the new model and its forecast, or neither
        if retrain and result.kept_old is None:
            artifact.save(art, job.model)
        write_forecast(fc, out)
    if retrain:
        on_event(job.name, "kept old model" if result.kept_old else "retrained",
                 {"mase": result.mase, "reason": result.kept_old})
    result.rows, result.output = len(fc.frame), str(out)
    on_event(job.name, "wrote", {"output": str(out), "rows": len(fc.frame)})


def validation_score(art, panel, wcfg) -> dict[str, float | None]:
    """MAE and MASE of a model on the latest validation window of each series (the last
    H points before any test part), so an old and a new model meet on the same window."""
    from .evaluate import records_at, summarize

    H = wcfg.horizon
    known = set(art.series_ids)
    series, positions = [], []
    for s in panel.series:
        n_train, n_val, _ = wcfg.part_lengths(len(s))
        o = n_train + n_val - H  # origin of the latest validation window
        if s.id in known and o >= art.lookback:
            series.append(s)
            positions.append(np.array([o]))
    if not series:
        return {"mae": None, "mase": None}
    sub = replace(panel, series=series)
    records = records_at(sub, positions, art.forecast_origins(sub, positions, H), art.season,
                         quantiles=art.quantiles)
    scores = summarize(records, groups=())["scores"]["model"]
    return {"mae": scores["mae"], "mase": scores["mase"]}


@dataclass
class BatchRun:
    results: list[JobResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 0 if all(r.status == "ok" for r in self.results) else 1


def run_batch(jobs: list[Job], parallel: int, threads: int,
              on_event: Callable[[str, str, dict], None]) -> BatchRun:
    """Run the jobs in order, or in `parallel` worker processes of `threads` torch threads."""
    start = time.perf_counter()
    if parallel <= 1:
        results = [run_job(j, on_event) for j in jobs]
    else:
        results = _run_parallel(jobs, parallel, threads, on_event)
    return BatchRun(results, round(time.perf_counter() - start, 3))


def _run_parallel(jobs, parallel, threads, on_event) -> list[JobResult]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: forking a process whose OpenMP pool is running can deadlock.
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(parallel, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_job, j, _silent) for j in jobs]
        results = []
        for job, fut in zip(jobs, futures):
            try:
                res = fut.result()
            except Exception as exc:  # a worker that died (segfault, OOM kill): that job failed
                res = JobResult(job.name, "failed", error=f"worker died: {type(exc).__name__}: {exc}")
            on_event(job.name, res.status, {"rows": res.rows, "output": res.output, "error": res.error})
            results.append(res)
    return results


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _silent(job: str, event: str, info: dict) -> None:
    """Events of a worker process are reported by the parent, from the results."""
