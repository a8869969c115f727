# Stage 1, the teacher: RetinaNet ResNet-101 FPN on DOTA (horizontal boxes), 24 epochs (published schedule).
#   python tools/train.py configs/ds2d2/retina_r101_dota.py
_base_ = ['../_base_/retinanet_r101_recipe.py', '../_base_/datasets/dota_hbb_detection.py']
model = dict(bbox_head=dict(num_classes=15))
