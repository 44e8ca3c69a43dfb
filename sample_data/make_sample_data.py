"""Regenerate the sample data from the public-domain datasets that statsmodels ships.

    pip install statsmodels && python sample_data/make_sample_data.py

Nothing is downloaded: statsmodels carries these files inside its wheel.
"""

from pathlib import Path

import pandas as pd
import statsmodels.api as sm

HERE = Path(__file__).parent

co2 = sm.datasets.co2.load_pandas().data  # weekly, 1958-03-29 .. 2001-12-29, 59 gaps as NaN
co2.index.name = "week"
co2.reset_index().to_csv(HERE / "co2_weekly.csv", index=False, date_format="%Y-%m-%d")

macro = sm.datasets.macrodata.load_pandas().data
quarter = pd.PeriodIndex.from_fields(year=macro["year"].astype(int), quarter=macro["quarter"].astype(int), freq="Q")
macro.index = quarter.to_timestamp()  # quarter start dates
cols = ["realgdp", "realcons", "realinv", "realgovt", "realdpi"]
long = macro[cols].rename_axis("quarter").reset_index().melt(
    id_vars="quarter", var_name="series", value_name="value")
long.to_csv(HERE / "us_macro_quarterly.csv", index=False, date_format="%Y-%m-%d")
