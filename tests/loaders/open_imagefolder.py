"""Open an ImageNet val tree as COSMOS does (c80348f src/training/data.py:156):
torchvision.datasets.ImageFolder(path), every sample loaded (pil_loader: convert("RGB")).

Usage: python open_imagefolder.py <val_images>. Prints one JSON line: len, classes (in
ImageFolder's order), and per sample its file name, class name and decoded size.
Runs in .venv-loaders; imports torchvision only, never vlprep.
"""

import json
import os
import sys

from torchvision.datasets import ImageFolder


def main(path: str) -> None:
    dataset = ImageFolder(path)
    samples = []
    for index in range(len(dataset)):
        image, target = dataset[index]
        file = dataset.samples[index][0]
        samples.append([os.path.basename(file), dataset.classes[target], list(image.size)])
    print(json.dumps({"len": len(dataset), "classes": dataset.classes, "samples": samples}))


if __name__ == "__main__":
    main(sys.argv[1])
