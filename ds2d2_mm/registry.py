"""Make the plugin's models visible from mmrotate's scope too.

The components register into mmdet's registries. A config with ``default_scope='mmrotate'``
looks names up in mmrotate's registries, which are mmdet's siblings, so
:func:`register_into_mmrotate` adds every ``ds2d2_mm`` model class (distiller, losses,
decomposers, backbone) to mmrotate's ``MODELS`` and its transforms (``LoadMultiBandImage``)
to mmrotate's ``TRANSFORMS`` (``LoadMultiBandImage``, ``LoadPairedImages``). Of the datasets only
those in :data:`ROTATED_DATASETS` are bridged (the paired ones, whose polygons mmrotate's
pipelines turn into rotated boxes): mmrotate has its own (oriented) ``DIORDataset``, which a
bridged horizontal one must not shadow. Hooks and optimizer constructors live in mmengine's root
registries and need nothing.
"""

from __future__ import annotations

import importlib.util

#: ds2d2_mm datasets also registered in mmrotate's DATASETS (no name clash with mmrotate's own).
ROTATED_DATASETS = ("PairedCocoDataset", "DroneVehicleDataset")


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
    for name in ROTATED_DATASETS:
        cls = det.DATASETS.get(name)
        if cls is not None and rot.DATASETS.module_dict.get(name, cls) is cls:
            rot.DATASETS.register_module(name=name, module=cls, force=True)
            names.append(name)
    return names
