"""gruforecast: time-series forecasting from the command line with a fused-gate GRU."""

__version__ = "0.1.0"
