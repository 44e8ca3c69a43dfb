"""Property tests (hypothesis) for the classes of hostile input, beside the example tables
of test_hostile.py: a new member of a class should fail one of these.

- An output is never an input, whatever the spelling of its path.
- Every option value either builds a config or is refused with one line naming the
  option (InputError), never another exception; sizes past their bound never build.
- Ids are read as written: text ids with leading zeros, digits only or padded, survive a
  CSV round trip as distinct series.
- No code is loaded from a place another user can write: whatever state the native
  cache folder and library are left in, only our own build is ever loaded.
"""

import os
import typing
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gruforecast.atomic import check_output_path
from gruforecast.config import ModelConfig, TrainConfig, build_configs, option_fields
from gruforecast.data import DataSpec, load_panel
from gruforecast.errors import InputError
from gruforecast.windows import WindowConfig

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,  # the same cases on every run
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIGS = (DataSpec, WindowConfig, ModelConfig, TrainConfig)


@SETTINGS
@given(ups=st.integers(0, 3), dots=st.integers(0, 3), slashes=st.integers(1, 3), link=st.booleans())
def test_an_output_spelled_any_way_as_an_input_is_refused(tmp_path_factory, ups, dots, slashes, link):
    root = tmp_path_factory.mktemp("paths")
    (root / "a" / "b").mkdir(parents=True)
    data = root / "a" / "b" / "data.csv"
    data.write_text("t,y\n0,1\n")
    spelled = root / "a" / "b"
    for _ in range(ups):  # a/b/../b/.. : the same folder by another road
        spelled = spelled / ".." / "b"
    for _ in range(dots):
        spelled = spelled / "."
    target = str(spelled / "data.csv").replace("/", "/" * slashes)
    if link:  # a link to the input is the input
        os.symlink(data, root / "link.csv")
        target = str(root / "link.csv")
    with pytest.raises(InputError, match="an input or output of this"):
        check_output_path(target, (".csv", ".parquet"), inputs=(data,))


def _values(tp):
    """Values of a field's type, as the CLI (Typer) and batch (its type check) deliver
    them: the hostile ones included (huge, negative, NaN, odd text)."""
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
    ints = st.one_of(st.integers(-10**6, 10**6), st.sampled_from([0, -1, 10**12, 2**63, -(2**63)]))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e308, 1e-308]))
    args = set(typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return st.one_of(text, st.lists(st.one_of(text, ints, floats), max_size=3))
    base = {int: ints, float: st.one_of(floats, ints), str: text, bool: st.booleans()}
    kinds = [base[k] for k in (args or {tp}) if k in base]
    return st.one_of(*kinds, *([st.none()] if type(None) in args else []))


FIELDS = [(cls, f, typing.get_type_hints(cls)[f.name]) for cls in CONFIGS for f in option_fields(cls)]


@SETTINGS
@given(data=st.data())
def test_any_option_value_builds_or_is_refused_with_one_line(data):
    cls, f, tp = data.draw(st.sampled_from(FIELDS))
    value = data.draw(_values(tp))
    try:
        [config] = build_configs({f.name: value}, cls)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and message, message
        return
    bound, least = f.metadata.get("most"), f.metadata.get("least")
    got = getattr(config, f.name)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        assert bound is None or got <= bound, (f.name, got)
        assert least is None or got >= least, (f.name, got)


ids = st.lists(st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=1, max_size=6, unique=True)


@SETTINGS
@given(names=ids)
def test_ids_are_read_as_written(tmp_path_factory, names):
    """`007` and `7` are two series; `02134` keeps its zero (CSV ids are text)."""
    path = tmp_path_factory.mktemp("ids") / "d.csv"
    frame = pd.concat([pd.DataFrame({"id": name, "t": np.arange(5), "y": np.arange(5.0) + k})
                       for k, name in enumerate(names)])
    frame.to_csv(path, index=False)
    panel = load_panel(path, DataSpec(target="y", time_col="t", id_col="id"))
    assert sorted(s.id for s in panel.series) == sorted(names)
    for k, name in enumerate(names):
        series = next(s for s in panel.series if s.id == name)
        np.testing.assert_array_equal(series.values[:, 0], np.arange(5.0) + k)


def test_every_bounded_option_is_declared():
    """Sizes that cost memory or time carry a `most` (test_any_option... checks it holds)."""
    sizes = {"hidden_size", "num_layers", "ensemble", "lookback", "horizon", "season", "batch_size",
             "epochs", "windows_per_epoch", "second_season", "base_seasons", "patience"}
    declared = {f.name for cls in CONFIGS for f in fields(cls) if "most" in f.metadata}
    assert sizes <= declared, sizes - declared


# -- 1. No code is loaded from a place another user can write -------------------------

FILE_STATES = ("absent", "ours", "planted", "link to planted", "link to ours", "folder", "fifo")


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folder_mode=st.sampled_from([0o700, 0o755, 0o770, 0o777, 0o707, 0o1777]), folder_link=st.booleans(),
       state=st.sampled_from(FILE_STATES), file_mode=st.sampled_from([0o600, 0o644, 0o664, 0o666, 0o755]),
       digest=st.sampled_from(["absent", "right", "wrong", "link"]))
def test_whatever_the_cache_holds_only_our_build_is_loaded(tmp_path_factory, monkeypatch, folder_mode,
                                                            folder_link, state, file_mode, digest):
    """A cache folder and library in any state a local attacker (or a careless umask)
    can leave: what `_build` returns is a regular file, not a link, in a folder only this
    user can write, with the bytes of our own build, and loading it runs no planted code."""
    import ctypes
    import shutil
    import stat
    import subprocess

    from gruforecast import native

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    root = tmp_path_factory.mktemp("cache")
    ours = root / "ours.so"
    native._compile(str(ours))
    planted = root / "planted.so"
    src = root / "planted.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void f(void) '
                   f'{{ FILE *f = fopen("{root}/ran", "w"); if (f) fclose(f); }}\n')
    subprocess.run([cc, "-shared", "-fPIC", str(src), "-o", str(planted)], check=True)
    monkeypatch.setenv("GRUFORECAST_CACHE", str(root / "base"))  # the cache: base/gruforecast
    if folder_link:  # the cache folder itself a link to a folder elsewhere
        real = root / "real"
        real.mkdir()
        (root / "base").mkdir()
        (root / "base" / "gruforecast").symlink_to(real)
    else:
        real = root / "base" / "gruforecast"
        real.mkdir(parents=True)
    key = native._key()
    target, record = real / f"gru-{key}.so", real / f"gru-{key}.sha256"
    if state == "ours":
        shutil.copy(ours, target)
    elif state == "planted":
        shutil.copy(planted, target)
    elif state == "link to planted":
        target.symlink_to(planted)
    elif state == "link to ours":
        target.symlink_to(ours)
    elif state == "folder":
        target.mkdir()
    elif state == "fifo":
        os.mkfifo(target)
    if state in ("ours", "planted"):
        target.chmod(file_mode)
    if digest == "right":
        record.write_text(native._sha256(ours))
    elif digest == "wrong":
        record.write_text("0" * 64)
    elif digest == "link":
        (root / "forged.sha256").write_text(native._sha256(planted))
        record.symlink_to(root / "forged.sha256")
    real.chmod(folder_mode)
    try:
        try:
            built = native._build()
        except OSError:
            return  # refusing to build is safe: the torch path computes the same function
        st_ = os.lstat(built)
        assert stat.S_ISREG(st_.st_mode) and st_.st_uid == os.getuid()
        parent = os.lstat(built.parent)
        assert stat.S_ISDIR(parent.st_mode) and not parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        assert not os.path.islink(built.parent)
        assert native._sha256(built) == native._sha256(ours)
        ctypes.CDLL(str(built))
        assert not (root / "ran").exists()
    finally:
        real.chmod(0o700)
