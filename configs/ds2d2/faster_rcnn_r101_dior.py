# Stage 1, the teacher: Faster R-CNN ResNet-101 FPN on DIOR, 24 epochs (published schedule).
#   python tools/train.py configs/ds2d2/faster_rcnn_r101_dior.py
_base_ = ['../_base_/faster_rcnn_r101_recipe.py', '../_base_/datasets/dior_detection.py']
model = dict(roi_head=dict(bbox_head=dict(num_classes=20)))
