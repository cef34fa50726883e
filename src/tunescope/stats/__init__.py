"""Statistics shared by the analyses and the comparisons: bootstrap resampling
(:mod:`tunescope.stats.bootstrap`) and Welch's t-test (:mod:`tunescope.stats.welch`). NumPy and
SciPy only; nothing here knows about models."""
