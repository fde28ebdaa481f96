#!/usr/bin/env python3
"""Export small, reduced-width CNNs (randomly initialised, seeded) to ONNX for `npm test`.

Like export_torchvision.py (same exporters: dynamo at opset 21, TorchScript at opset 17,
dynamic batch) but with narrow widths and a 1x3x64x64 example input, so the files are small
enough to commit, and with BatchNorm running statistics calibrated on image-like inputs (see
calibrate) so that every output depends on its input (test/fixtures/torch/, checked by test/integration/torch-exports.test.ts).

    /work/venv-torch/bin/python bench/models/export_small.py [OUT_DIR]   (default test/fixtures/torch)

Writes OUT_DIR/<model>.dynamo-op21.onnx, OUT_DIR/<model>.torchscript-op17.onnx and
OUT_DIR/export-log.json (every export with ok/failed and the exporter's error).
"""
import json
import os
import sys
import time
import types

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
import torchvision.models as tvm  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import describe, export_one  # noqa: E402


class TinyResNet(nn.Module):
    """ResNet-18-shaped (stem conv+BN+ReLU+maxpool, four stages of BasicBlocks with residual adds,
    strided 1x1 downsample shortcuts, global average pool, FC) at widths 8/12/16/24."""

    def __init__(self, widths=(8, 12, 16, 24), classes=10):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != w:
                down = nn.Sequential(nn.Conv2d(cin, w, 1, stride, bias=False), nn.BatchNorm2d(w))
            layers += [BasicBlock(cin, w, stride, down), BasicBlock(w, w)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class TinyEfficientNet(nn.Module):
    """An EfficientNet-style stack built from torchvision's MBConv blocks (depthwise conv, SE, SiLU,
    stochastic depth off in eval) at narrow widths."""

    def __init__(self, classes=10):
        super().__init__()
        from functools import partial
        from torchvision.models.efficientnet import MBConvConfig, _efficientnet_conf
        from torchvision.models.efficientnet import EfficientNet
        bneck = partial(MBConvConfig, width_mult=0.25, depth_mult=0.25)
        settings = [
            bneck(1, 3, 1, 32, 16, 1),
            bneck(6, 3, 2, 16, 24, 2),
            bneck(6, 5, 2, 24, 40, 2),
            bneck(6, 3, 2, 40, 80, 3),
            bneck(6, 5, 1, 80, 112, 3),
        ]
        self.net = EfficientNet(settings, dropout=0.2, num_classes=classes, last_channel=64)

    def forward(self, x):
        return self.net(x)


class TinyConvNeXt(nn.Module):
    """A ConvNeXt-style stack from torchvision's CNBlock (7x7 depthwise conv, LayerNorm over
    channels via permute, Linear-GELU-Linear, layer scale, residual add) and its LayerNorm2d
    downsampling, widths 8/16/32."""

    def __init__(self, classes=10):
        super().__init__()
        from functools import partial
        from torchvision.models.convnext import CNBlockConfig, ConvNeXt
        settings = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)]
        self.net = ConvNeXt(settings, stochastic_depth_prob=0.0, num_classes=classes)
        # layer_scale defaults to 1e-6, which makes every block nearly the identity; 0.5 makes the blocks count
        for m in self.net.modules():
            if hasattr(m, "layer_scale"):
                nn.init.constant_(m.layer_scale, 0.5)

    def forward(self, x):
        return self.net(x)


class DetHead(nn.Module):
    """The detection-style head of export_torchvision.py at half width: strided convs, nearest 2x
    upsample, concat with a skip, conv head."""

    def __init__(self, classes: int = 4, anchors: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.lat = nn.Conv2d(32, 16, 1)
        self.fuse = nn.Sequential(nn.Conv2d(32, 16, 3, 1, 1), nn.ReLU())
        self.head = nn.Conv2d(16, anchors * (5 + classes), 1)

    def forward(self, x):
        s2 = self.c2(self.stem(x))
        s3 = self.c3(s2)
        up = F.interpolate(self.lat(s3), scale_factor=2.0, mode="nearest")
        return self.head(self.fuse(torch.cat([up, s2], dim=1)))


def mobilenet_v2_small():
    """torchvision's MobileNetV2 at width_mult=0.25; its last 1x1 conv keeps 1280 channels at any
    width, so it is replaced by one to 128 channels (and the classifier to match)."""
    from torchvision.ops.misc import Conv2dNormActivation
    m = tvm.mobilenet_v2(weights=None, width_mult=0.25, num_classes=10)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, 128, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(128, 10)
    return m


def mobilenet_v3_small():
    """torchvision's MobileNetV3-Small configuration at width_mult=0.25 (hardswish, SE with
    hardsigmoid), last_channel 128 instead of 1024."""
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf
    setting, _ = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25)
    return MobileNetV3(setting, last_channel=128, num_classes=10)


def shufflenet_v2_small():
    """torchvision's ShuffleNetV2 (channel split, concat, channel shuffle) with the x0_5 depths and
    stem 16, stage widths 16/32/64 and a 128-channel last conv (x0_5: 24/48/96/192, 1024)."""
    from torchvision.models.shufflenetv2 import ShuffleNetV2
    return ShuffleNetV2([4, 8, 4], [16, 16, 32, 64, 128], num_classes=10)


MODELS = {
    "mobilenet_v2_w025": mobilenet_v2_small,
    "mobilenet_v3_small_w025": mobilenet_v3_small,
    "shufflenet_v2_small": shufflenet_v2_small,
    "tiny_resnet": lambda: TinyResNet(),
    "tiny_efficientnet": lambda: TinyEfficientNet(),
    "tiny_convnext": lambda: TinyConvNeXt(),
    "tiny_dethead": lambda: DetHead(),
}


def image_like(batch, hw, gen):
    """Image-like random inputs (per-channel offset and scale, a low-frequency wave, noise), like
    bench/image-like.ts."""
    mean = torch.empty(batch, 3, 1, 1).uniform_(-1.5, 1.5, generator=gen)
    scale = torch.empty(batch, 3, 1, 1).uniform_(0.3, 2, generator=gen)
    f = torch.empty(batch, 3, 2, 1, 1).uniform_(-0.1 * 224 / hw, 0.1 * 224 / hw, generator=gen)
    phase = torch.empty(batch, 3, 1, 1).uniform_(0, 6.2832, generator=gen)
    i = torch.arange(hw, dtype=torch.float32).view(1, 1, hw, 1)
    j = torch.arange(hw, dtype=torch.float32).view(1, 1, 1, hw)
    wave = torch.sin(f[:, :, 0] * j + f[:, :, 1] * i + phase)
    return mean + scale * (wave + 0.5 * torch.randn(batch, 3, hw, hw, generator=gen))


def calibrate(model, hw):
    """Sets every BatchNorm's running statistics from 8 batches of image-like inputs (train mode,
    cumulative average), as training would. With the untrained defaults (mean 0, var 1) activations
    grow layer by layer and MobileNetV2's ReLU6 saturates: its output no longer depends on the input."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    gen = torch.Generator().manual_seed(1)
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(image_like(16, hw, gen))
    model.eval()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/torch"
    os.makedirs(out, exist_ok=True)
    log = {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__, "input": [1, 3, 64, 64], "exports": []}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model = make()
        calibrate(model, 64)
        x = torch.randn(1, 3, 64, 64)
        for dynamo, opset, tag in ((True, 21, "dynamo-op21"), (False, 17, "torchscript-op17")):
            path = os.path.join(out, f"{name}.{tag}.onnx")
            t0 = time.time()
            entry = {"model": name, "exporter": tag, "file": os.path.basename(path)}
            try:
                with torch.no_grad():
                    export_one(model, x, path, dynamo, opset)
                entry["ok"] = True
            except Exception as e:
                entry["ok"] = False
                entry["error"] = describe(e)
                if os.path.exists(path):
                    os.remove(path)
                if dynamo:
                    try:
                        with torch.no_grad():
                            export_one(model, torch.randn(2, 3, 64, 64), path, dynamo, opset)
                        entry["ok"] = True
                        entry["note"] = "exported with a batch-2 example input after the batch-1 example failed"
                    except Exception as e2:
                        entry["retry_error"] = describe(e2)
                        if os.path.exists(path):
                            os.remove(path)
            if os.path.exists(path):
                entry["bytes"] = os.path.getsize(path)
            entry["seconds"] = round(time.time() - t0, 1)
            log["exports"].append(entry)
            print(json.dumps(entry), flush=True)
    with open(os.path.join(out, "export-log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
