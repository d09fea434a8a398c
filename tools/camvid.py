"""CamVid as SegNet prepared it (../shared/datasets/camvid): 11 classes, label 11 = void."""
import os

import numpy as np
from PIL import Image

CLASSES = ["sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"]
COLORS = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
          [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192]]
VOID = 11
# CamVid frames are 480x360: the short side the models trained here expect (resize_size).
HEIGHT = 360


def load_split(root, split):
    """All frames and labels of a split (`train` or `val`) as uint8 arrays: CamVid fits in memory."""
    images, labels = [], []
    with open(os.path.join(root, f"{split}.txt")) as listing:
        for line in listing:
            if line.strip():
                image, label = line.split()
                images.append(np.asarray(Image.open(os.path.join(root, image)).convert("RGB")))
                labels.append(np.asarray(Image.open(os.path.join(root, label))))
    return images, labels
