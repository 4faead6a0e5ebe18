"""The PyTorch side of `reuse-vos bench networks`.

Builds the network reuse-vos runs -- MobileNetV2 with batch norm folded into the convolutions,
and the refinement decoder -- from the files reuse-vos wrote into the folder given as the only
argument, checks its outputs against reuse-vos's own (ONNX Runtime, f32), times it the way
reuse-vos times itself, and prints one JSON line. Needs torch alone (no torchvision, no numpy).
"""

import json
import struct
import sys
import time

import torch
import torch.nn.functional as F


def raw(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape).clone()


def safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    body = bytearray(blob[8 + n :])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(body[a:b], dtype=torch.float32).reshape(t["shape"]).clone()
    return out


class Backbone:
    def __init__(self, spec, weights, fmt):
        self.blocks = []
        for block in spec["blocks"]:
            convs = []
            for c in block["convs"]:
                k = c["kernel"]
                w = weights[c["weight"][0] : c["weight"][0] + c["weight"][1]]
                b = weights[c["bias"][0] : c["bias"][0] + c["bias"][1]]
                w = w.reshape(c["cout"], c["cin"] // c["groups"], k, k).contiguous(memory_format=fmt)
                convs.append((w, b.clone(), c["stride"], (k - 1) // 2, c["groups"], c["relu6"]))
            self.blocks.append((convs, block["residual"]))
        self.taps = spec["taps"]

    def __call__(self, x):
        taps = []
        for i, (convs, residual) in enumerate(self.blocks):
            y = x
            for w, b, stride, pad, groups, relu6 in convs:
                y = F.conv2d(y, w, b, stride, pad, 1, groups)
                if relu6:
                    y = F.relu6(y)
            x = x + y if residual else y
            if i in self.taps:
                taps.append(x)
        return taps  # s4, s8, s16, s32


class Decoder:
    def __init__(self, weights, fmt):
        self.w = {k: v.contiguous(memory_format=fmt) if v.dim() == 4 else v for k, v in weights.items()}

    def conv(self, x, name, relu=False):
        w = self.w[name + ".weight"]
        y = F.conv2d(x, w, self.w[name + ".bias"], 1, w.shape[-1] // 2)
        return F.relu(y) if relu else y

    @staticmethod
    def resize(x, like):
        size = like.shape[-2:]
        if x.shape[-2:] == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def level(self, i, f, score, prev):
        p = f"levels.{i}"
        h = self.conv(self.conv(f, p + ".tse.reduce1", True), p + ".tse.reduce2")
        h = torch.cat([h, self.resize(score, f)], 1)
        x = self.conv(self.conv(h, p + ".tse.fuse1", True), p + ".tse.fuse2", True)
        if prev is not None:
            if p + ".adapt.weight" in self.w:
                prev = self.conv(prev, p + ".adapt")
            up = self.resize(prev, x)
            pooled = torch.cat([x.mean((2, 3), keepdim=True), up.mean((2, 3), keepdim=True)], 1)
            att = torch.sigmoid(self.conv(self.conv(pooled, p + ".cab.att1", True), p + ".cab.att2"))
            x = x * att + up
        y = self.conv(x, p + ".rrb.inner")
        return F.relu(y + self.conv(self.conv(y, p + ".rrb.conv_a", True), p + ".rrb.conv_b"))

    def __call__(self, taps, score):
        s4, s8, s16, s32 = taps
        x = self.level(0, s32, score, None)
        x = self.level(1, s16, score, x)
        x = self.level(2, s8, score, x)
        x = self.level(3, s4, score, x)
        return self.conv(self.conv(x, "head1", True), "head2")


def median_ms(f, runs):
    for _ in range(2):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    return [times[len(times) // 2], times[0], times[-1]]


def main():
    folder = sys.argv[1]
    spec = json.load(open(f"{folder}/spec.json"))
    torch.set_num_threads(spec["threads"])
    weights = raw(f"{folder}/backbone.bin", [spec["backbone_floats"]])
    decoder_weights = safetensors(f"{folder}/decoder.safetensors")
    theirs = raw(f"{folder}/logits.bin", [1] + spec["logits"])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": []}
    # NCHW as loaded, and channels-last (PyTorch's advice for CPU inference: its depthwise
    # convolutions are several times faster so).
    for name, fmt in [("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)]:
        backbone = Backbone(spec, weights, fmt)
        decoder = Decoder(decoder_weights, fmt)
        image = raw(f"{folder}/image.bin", [1] + spec["image"]).contiguous(memory_format=fmt)
        score = raw(f"{folder}/score.bin", [1] + spec["score"]).contiguous(memory_format=fmt)
        with torch.inference_mode():
            taps = backbone(image)
            logits = decoder(taps, score)
            if logits.shape != theirs.shape:
                raise SystemExit(f"logits of shape {list(logits.shape)}, ONNX Runtime's {list(theirs.shape)}")
            out["rows"].append({
                "layout": name,
                "max_abs_diff": (logits - theirs).abs().max().item(),
                "max_abs": theirs.abs().max().item(),
                "backbone_ms": median_ms(lambda: backbone(image), spec["runs"]),
                "decoder_ms": median_ms(lambda: decoder(taps, score), spec["runs"]),
                "full_ms": median_ms(lambda: decoder(backbone(image), score), spec["runs"]),
            })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
