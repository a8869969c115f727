"""The command-line tools, installed as ``ds2d2-*`` commands (``tools/*.py`` wrap them).

Not imported by ``import ds2d2_mm``: a config's ``custom_imports`` loads the registered core only.
"""
