"""Metrics: ``DOTAWholeImageMetric`` (registered in mmrotate's ``METRICS`` by
:mod:`ds2d2_mm.evaluation` when mmrotate is installed)."""
