# Cross-modal DS2D2 (this project's extension; the paper has no cross-modal results), stage 1,
# the teacher: RetinaNet ResNet-101 FPN trained on DroneVehicle's RGB images alone, with the DS2D2
# schedule (24 epochs, lr 0.005 at a total batch of 16; not tuned for DroneVehicle).
#   python tools/data/dronevehicle_to_coco.py --root data/DroneVehicle \
#       --out data/DroneVehicle640 --crop-border 100
#   python tools/train.py configs/multimodal/retina_r101_dronevehicle_rgb.py
_base_ = ['../_base_/retinanet_r101_recipe.py', '../_base_/datasets/dronevehicle_rgb.py']
model = dict(bbox_head=dict(num_classes=5))
