#!/usr/bin/env python3
"""Export torchvision architectures (weights=None, seeded) to ONNX the way users do.

For each model: the default (dynamo) exporter at opset 21 and the TorchScript
exporter at opset 17, input 1x3x224x224 with a dynamic batch axis.

    python bench/models/export_torchvision.py [OUT_DIR]   (default /work/torchvision-onnx)

    python bench/models/export_torchvision.py OUT_DIR convnext_tiny,dethead   (only these)

Writes OUT_DIR/<model>.dynamo-op21.onnx and OUT_DIR/<model>.torchscript-op17.onnx,
and OUT_DIR/export-log.json listing every export with ok/failed and the exporter's error.
A dynamo export that fails with the batch-1 example input is retried with a batch-2 example
(both recorded).

torchvision's compiled ops do not load against the CPU build of torch (its
_meta_registrations fails on `torchvision::nms`); the model definitions do not
need them, so that module is stubbed before import.
"""
import inspect
import json
import os
import re
import sys
import time
import traceback
import types

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
import torchvision.models as tvm  # noqa: E402


class DetHead(nn.Module):
    """A small detection-style head: backbone convs, nearest 2x upsample, concat with a skip, conv head."""

    def __init__(self, classes: int = 8, anchors: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU())
        self.lat = nn.Conv2d(64, 32, 1)
        self.fuse = nn.Sequential(nn.Conv2d(64, 32, 3, 1, 1), nn.ReLU())
        self.head = nn.Conv2d(32, anchors * (5 + classes), 1)

    def forward(self, x):
        s2 = self.c2(self.stem(x))          # 32 x 56 x 56
        s3 = self.c3(s2)                    # 64 x 28 x 28
        up = F.interpolate(self.lat(s3), scale_factor=2.0, mode="nearest")  # 32 x 56 x 56
        y = torch.cat([up, s2], dim=1)      # 64 x 56 x 56
        return self.head(self.fuse(y))


MODELS = {
    "resnet18": lambda: tvm.resnet18(weights=None),
    "resnet50": lambda: tvm.resnet50(weights=None),
    "mobilenet_v2": lambda: tvm.mobilenet_v2(weights=None),
    "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(weights=None),
    "mobilenet_v3_large": lambda: tvm.mobilenet_v3_large(weights=None),
    "efficientnet_b0": lambda: tvm.efficientnet_b0(weights=None),
    "shufflenet_v2_x1_0": lambda: tvm.shufflenet_v2_x1_0(weights=None),
    "squeezenet1_1": lambda: tvm.squeezenet1_1(weights=None),
    "densenet121": lambda: tvm.densenet121(weights=None),
    # default init (truncated normal) makes GoogLeNet's output ignore the input; init_weights=False avoids it
    "googlenet": lambda: tvm.googlenet(weights=None, init_weights=False, aux_logits=False),
    "regnet_y_400mf": lambda: tvm.regnet_y_400mf(weights=None),
    "convnext_tiny": lambda: tvm.convnext_tiny(weights=None),
    "dethead": lambda: DetHead(),
}


def describe(e):
    """The exporter's error: its type, first line, and any line naming a violated constraint or guard."""
    text, seen, c = "", set(), e
    while c is not None and id(c) not in seen:  # the exporter wraps torch.export's error: walk the chain
        seen.add(id(c))
        text += f"\n{type(c).__name__}: {c}"
        c = c.__cause__ or c.__context__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    keep = [lines[0]] + [l for l in lines[1:] if any(k in l for k in ("Constraints violated", "satisfy the generated guard", "Dim(", "Unsupported", "not supported"))]
    return " | ".join(dict.fromkeys(keep))[:600]


# torch before 2.1 (Debian 12's python3-torch is 1.13) has only the TorchScript exporter, and its
# torch.onnx.export takes no `dynamo` argument.
HAS_DYNAMO = "dynamo" in inspect.signature(torch.onnx.export).parameters


def export_one(model, x, path, dynamo, opset):
    if dynamo and not HAS_DYNAMO:
        raise RuntimeError(f"torch {torch.__version__} has no dynamo exporter")
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.onnx.export(
            model, (x,), path, dynamo=True, opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_shapes=({0: batch},), external_data=False,
        )
    else:
        torch.onnx.export(
            model, (x,), path, opset_version=opset, **({"dynamo": False} if HAS_DYNAMO else {}),
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/work/torchvision-onnx"
    only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    os.makedirs(out, exist_ok=True)
    log = {"torch": torch.__version__, "torchvision": torchvision.__version__, "exports": []}
    for name, make in MODELS.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = make().eval()
        x = torch.randn(1, 3, 224, 224)
        for dynamo, opset, tag in ((True, 21, "dynamo-op21"), (False, 17, "torchscript-op17")):
            path = os.path.join(out, f"{name}.{tag}.onnx")
            t0 = time.time()
            entry = {"model": name, "exporter": tag, "file": os.path.basename(path)}
            try:
                with torch.no_grad():
                    export_one(model, x, path, dynamo, opset)
                entry["ok"] = True
            except Exception as e:  # record the exporter's own failure
                entry["ok"] = False
                entry["error"] = describe(e)
                if os.path.exists(path):
                    os.remove(path)
                if dynamo and HAS_DYNAMO:
                    # torch.export can specialise a batch-1 example (ConvNeXt: a guard batch <= 2);
                    # users then pass a batch-2 example. Retry so, keeping the first failure on record.
                    try:
                        with torch.no_grad():
                            export_one(model, torch.randn(2, 3, 224, 224), path, dynamo, opset)
                        entry["ok"] = True
                        entry["note"] = "exported with a batch-2 example input after the batch-1 example failed"
                    except Exception as e2:
                        entry["retry_error"] = describe(e2)
                        if os.path.exists(path):
                            os.remove(path)
            entry["seconds"] = round(time.time() - t0, 1)
            log["exports"].append(entry)
            print(json.dumps(entry), flush=True)
    prev = os.path.join(out, "export-log.json")
    if only and os.path.exists(prev):
        old = json.load(open(prev))
        keep = [e for e in old.get("exports", []) if e["model"] not in only]
        log["exports"] = keep + log["exports"]
    with open(prev, "w") as f:
        json.dump(log, f, indent=1)


if __name__ == "__main__":
    main()
