"""Converters of the official dataset releases (DIOR XML, DOTA splitting, DroneVehicle) and the
format parsers they share with the metrics. Their commands are in :mod:`ds2d2_mm.cli`."""
