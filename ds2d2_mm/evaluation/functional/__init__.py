"""Functions behind the metrics: merging DOTA patch detections, Task1 submission files."""
