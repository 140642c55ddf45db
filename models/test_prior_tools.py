"""Unit tests of the prior tools; self-contained (synthetic weights, no downloads).

Run: .venv/bin/python -m unittest models/test_prior_tools.py -v

The converter is checked against an independent NumPy forward pass of the *unfolded* network
(explicit BatchNorm, explicit TF-"SAME" padding) on a small random EfficientNet-Lite-shaped state dict
written as a legacy torch.save stream with HWIO-strided storages, like the real weights.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_manifest  # noqa: E402
import convert_efficientnet_lite as conv  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Writing legacy torch.save streams without torch (fake `torch` modules only while pickling).
# ---------------------------------------------------------------------------------------------


class _FakeStorage:
    pass


def _fake_torch_modules():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only pickled by reference
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storages = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (_FakeStorage,), {"__module__": "torch"})
        setattr(torch, name, cls)
        storages[name] = cls
    torch._utils = utils
    return torch, utils, storages


class _Tensor:
    def __init__(self, key, storage_cls, numel, size, stride):
        self.key, self.storage_cls, self.numel, self.size, self.stride = key, storage_cls, numel, size, stride


def write_legacy(path: Path, tensors: "dict[str, tuple[np.ndarray, np.ndarray, tuple]]") -> None:
    """tensors: name -> (storage data 1-D, logical array (unused), stride in elements)."""
    torch, utils, storages = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        refs = collections.OrderedDict()
        for i, (name, (data, logical, stride)) in enumerate(tensors.items()):
            cls = storages["LongStorage" if data.dtype == np.int64 else "FloatStorage"]
            refs[name] = _Tensor(str(1000 + i), cls, data.size, logical.shape, stride)

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__storage__":
                    t = obj[1]
                    return ("storage", t.storage_cls, t.key, "cpu", t.numel, None)
                return None

            def reducer_override(self, obj):
                if isinstance(obj, _Tensor):
                    return (utils._rebuild_tensor_v2, (("__storage__", obj), 0, obj.size, obj.stride, False,
                                                       collections.OrderedDict()))
                return NotImplemented

        buf = io.BytesIO()
        for header in (conv.LEGACY_MAGIC, conv.LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, buf, protocol=2)
        P(buf, protocol=2).dump(refs)
        pickle.dump([r.key for r in refs.values()], buf, protocol=2)
        for data, _, _ in tensors.values():
            buf.write(int(data.size).to_bytes(8, "little"))
            buf.write(data.astype(data.dtype.newbyteorder("<")).tobytes())
        path.write_bytes(buf.getvalue())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def hwio(w: np.ndarray):
    """Store conv weight [O, I, kh, kw] in TF HWIO order; returns (storage, w, strides)."""
    o, i, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).ravel(), w, (1, o, kw * i * o, i * o)


def contiguous(a: np.ndarray):
    strides = tuple(s // a.itemsize for s in a.strides)
    return a.ravel(), a, strides


# ---------------------------------------------------------------------------------------------
# A small random EfficientNet-Lite-shaped state dict (7 stages, stem 32, head 1280)
# ---------------------------------------------------------------------------------------------

# per stage: (repeats, out channels, expand ratio, kernel, first stride) — the EfficientNet-B0 table,
# written out here independently of the converter's STAGES.
SMALL = [(1, 8, 1, 3, 1), (2, 12, 2, 3, 2), (1, 16, 2, 5, 2), (2, 20, 2, 3, 2), (1, 24, 2, 5, 1), (2, 28, 2, 5, 2),
         (1, 32, 2, 3, 1)]
EPS = 1e-3


def random_state(rng) -> "collections.OrderedDict[str, tuple]":
    sd = collections.OrderedDict()

    def bn(prefix, c):
        sd[prefix + ".weight"] = contiguous(rng.uniform(0.5, 1.5, c).astype(np.float32))
        sd[prefix + ".bias"] = contiguous(rng.normal(0, 0.1, c).astype(np.float32))
        sd[prefix + ".running_mean"] = contiguous(rng.normal(0, 0.1, c).astype(np.float32))
        sd[prefix + ".running_var"] = contiguous(rng.uniform(0.5, 1.5, c).astype(np.float32))
        sd[prefix + ".num_batches_tracked"] = (np.array([7], np.int64), np.array(7, np.int64), ())

    def w(*shape):
        fan_in = np.prod(shape[1:])
        return rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)

    sd["_conv_stem.weight"] = hwio(w(32, 3, 3, 3))
    bn("_bn0", 32)
    c_in, b = 32, 0
    for reps, c_out, e, k, _ in SMALL:
        for _ in range(reps):
            p, mid = f"_blocks.{b}.", c_in * e
            if e != 1:
                sd[p + "_expand_conv.weight"] = hwio(w(mid, c_in, 1, 1))
                bn(p + "_bn0", mid)
            sd[p + "_depthwise_conv.weight"] = hwio(w(mid, 1, k, k))
            bn(p + "_bn1", mid)
            sd[p + "_project_conv.weight"] = hwio(w(c_out, mid, 1, 1))
            bn(p + "_bn2", c_out)
            c_in, b = c_out, b + 1
    sd["_conv_head.weight"] = hwio(w(1280, c_in, 1, 1))
    bn("_bn1", 1280)
    fc = w(1000, 1280)
    sd["_fc.weight"] = (np.ascontiguousarray(fc.T).ravel(), fc, (1, 1000))  # stored [in][out] like the real file
    sd["_fc.bias"] = contiguous(rng.normal(0, 0.1, 1000).astype(np.float32))
    return sd


# ---------------------------------------------------------------------------------------------
# Independent NumPy reference forward (float64, unfolded BN, explicit TF SAME padding)
# ---------------------------------------------------------------------------------------------


def np_conv(x, w, stride, groups):
    """x [C, H, W], w [O, C/groups, k, k]; TF SAME padding."""
    k = w.shape[2]
    pads = []
    for n in x.shape[1:]:
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads.append((total // 2, total - total // 2))
    xp = np.pad(x, [(0, 0)] + pads)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    if groups == 1:
        return np.einsum("chwij,ocij->ohw", win, w)
    return np.einsum("chwij,cij->chw", win, w[:, 0])


def np_forward(sd, x):
    def bn(y, p):
        g, b, m, v = (sd[p + s] for s in (".weight", ".bias", ".running_mean", ".running_var"))
        return (y - m[:, None, None]) / np.sqrt(v[:, None, None] + EPS) * g[:, None, None] + b[:, None, None]

    relu6 = lambda y: np.clip(y, 0, 6)  # noqa: E731
    x = relu6(bn(np_conv(x, sd["_conv_stem.weight"], 2, 1), "_bn0"))
    i, c_in = 0, 32
    for reps, c_out, e, _, first_stride in SMALL:
        for r in range(reps):
            p, inp, stride = f"_blocks.{i}.", x, first_stride if r == 0 else 1
            if e != 1:
                x = relu6(bn(np_conv(x, sd[p + "_expand_conv.weight"], 1, 1), p + "_bn0"))
            x = relu6(bn(np_conv(x, sd[p + "_depthwise_conv.weight"], stride, x.shape[0]), p + "_bn1"))
            x = bn(np_conv(x, sd[p + "_project_conv.weight"], 1, 1), p + "_bn2")
            if stride == 1 and c_in == c_out:
                x = x + inp
            i, c_in = i + 1, c_out
    x = relu6(bn(np_conv(x, sd["_conv_head.weight"], 1, 1), "_bn1"))
    feats = x.mean(axis=(1, 2))
    return feats, sd["_fc.weight"] @ feats + sd["_fc.bias"]


class ConverterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.spec = random_state(np.random.default_rng(0))
        cls.pth = cls.dir / "small.pth"
        write_legacy(cls.pth, cls.spec)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def convert(self, out: Path, *extra, weights: Path | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(HERE / "convert_efficientnet_lite.py"), "--weights", str(weights or self.pth),
               "--variant", "lite0", "--out", str(out), *extra]
        return subprocess.run(cmd, capture_output=True, text=True)

    def test_loader_honours_strides_and_dtypes(self):
        sd = conv.load_legacy_state_dict(self.pth)
        self.assertEqual(list(sd), list(self.spec))
        for name, (_, logical, _) in self.spec.items():
            np.testing.assert_array_equal(sd[name], logical, err_msg=name)
            self.assertEqual(sd[name].dtype, logical.dtype, name)
            self.assertTrue(sd[name].flags.c_contiguous, name)

    def test_onnx_matches_numpy_reference_at_several_sizes(self):
        sd = conv.load_legacy_state_dict(self.pth)
        sess = ort.InferenceSession(conv.build_model(sd, "lite0").SerializeToString())
        ref_sd = {k: v.astype(np.float64) for k, v in sd.items()}
        rng = np.random.default_rng(1)
        for size in (32, 45, 64):  # even and odd sizes: SAME padding differs by parity
            x = rng.normal(0, 1, (2, 3, size, size)).astype(np.float32)
            feats, logits = sess.run(["features", "logits"], {"input": x})
            self.assertEqual(feats.shape, (2, 1280))
            self.assertEqual(logits.shape, (2, 1000))
            for n in range(2):
                rf, rl = np_forward(ref_sd, x[n].astype(np.float64))
                np.testing.assert_allclose(feats[n], rf, rtol=1e-4, atol=1e-4, err_msg=f"features @{size}")
                np.testing.assert_allclose(logits[n], rl, rtol=1e-4, atol=1e-4, err_msg=f"logits @{size}")

    def test_symmetric_padding_differs_from_same(self):
        sd = conv.load_legacy_state_dict(self.pth)
        x = np.random.default_rng(2).normal(0, 1, (1, 3, 32, 32)).astype(np.float32)
        a = ort.InferenceSession(conv.build_model(sd, "lite0", "same").SerializeToString()).run(["features"], {"input": x})
        b = ort.InferenceSession(conv.build_model(sd, "lite0", "symmetric").SerializeToString()).run(["features"], {"input": x})
        self.assertGreater(float(np.abs(a[0] - b[0]).max()), 1e-3)

    def test_conversion_is_byte_deterministic_and_manifest_pins_it(self):
        a, b = self.dir / "a.onnx", self.dir / "b.onnx"
        manifest = self.dir / "a.toml"
        r = self.convert(a, "--manifest", str(manifest))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.convert(b).returncode, 0)
        self.assertEqual(a.read_bytes(), b.read_bytes())
        self.assertIsNone(check_manifest.check(manifest))
        self.assertIn(hashlib.sha256(a.read_bytes()).hexdigest(), manifest.read_text())
        a.write_bytes(a.read_bytes()[:-1] + b"\0")
        self.assertIn("sha256", check_manifest.check(manifest))

    def test_restricted_unpickler_refuses_other_globals(self):
        marker = self.dir / "pwned"

        class Evil:
            def __reduce__(self):
                return (subprocess.call, (["touch", str(marker)],))

        evil = self.dir / "evil.pth"
        buf = io.BytesIO()
        for header in (conv.LEGACY_MAGIC, conv.LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, buf, protocol=2)
        pickle.dump(collections.OrderedDict(w=Evil()), buf, protocol=2)
        evil.write_bytes(buf.getvalue())
        with self.assertRaises(pickle.UnpicklingError) as ctx:
            conv.load_legacy_state_dict(evil)
        self.assertIn("refusing to load global", str(ctx.exception))
        self.assertFalse(marker.exists())
        r = self.convert(self.dir / "evil.onnx", weights=evil)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing", r.stderr)
        self.assertFalse((self.dir / "evil.onnx").exists())

    def test_truncated_file_is_an_error(self):
        bad = self.dir / "truncated.pth"
        bad.write_bytes(self.pth.read_bytes()[:-10])
        with self.assertRaisesRegex(ValueError, "truncated"):
            conv.load_legacy_state_dict(bad)


class ManifestTest(unittest.TestCase):
    def test_committed_manifests_have_the_required_keys(self):
        for path in sorted(HERE.glob("*.toml")):
            err = check_manifest.check(path)
            # Only "file not built yet" or "template without sha256" are acceptable here.
            if err is not None:
                self.assertTrue("does not exist" in err or "sha256` is empty" in err, f"{path.name}: {err}")

    def test_missing_key_and_bad_values_are_reported(self):
        with tempfile.TemporaryDirectory() as d:
            src = (HERE / "efficientnet_lite0.toml").read_text()
            p = Path(d) / "m.toml"
            p.write_text(src.replace('input_name = "input"', ""))
            self.assertIn("input_name", check_manifest.check(p))
            p.write_text(src.replace('resize = "bilinear"', 'resize = "bicubic"'))
            self.assertIn("resize", check_manifest.check(p))
            p.write_text(src.replace("dim = 1280", 'dim = "1280"'))
            self.assertIn("dim", check_manifest.check(p))


if __name__ == "__main__":
    unittest.main()
