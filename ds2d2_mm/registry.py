"""Make the plugin's models visible from mmrotate's scope too.

The components register into mmdet's registries. A config with ``default_scope='mmrotate'``
looks names up in mmrotate's registries, which are mmdet's siblings, so
:func:`register_into_mmrotate` adds every ``ds2d2_mm`` model class (distiller, losses,
decomposers, backbone) to mmrotate's ``MODELS`` and its transforms (``LoadMultiBandImage``)
to mmrotate's ``TRANSFORMS``. Datasets are not bridged: mmrotate has its own
(oriented) ``DIORDataset``, and rotated configs use mmrotate's datasets. Hooks and optimizer
constructors live in mmengine's root registries and need nothing.
"""

from __future__ import annotations

import importlib.util


def register_into_mmrotate() -> list[str]:
    """Register each ``ds2d2_mm`` model class in mmrotate's ``MODELS`` (transforms in its
    ``TRANSFORMS``).

    Returns the names registered; nothing when mmrotate is not installed.
    """
    if importlib.util.find_spec("mmrotate") is None:
        return []
    from mmdet import registry as det
    from mmrotate import registry as rot

    names = []
    for det_registry, rot_registry in ((det.MODELS, rot.MODELS),
                                       (det.TRANSFORMS, rot.TRANSFORMS)):
        for name, cls in list(det_registry.module_dict.items()):
            if getattr(cls, "__module__", "").startswith("ds2d2_mm"):
                rot_registry.register_module(name=name, module=cls, force=True)
                names.append(name)
    return names
