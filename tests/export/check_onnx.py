"""Checks an exported encoder.onnx with the onnx package (full checker + shape inference) and
prints `opset input_dims output_dims` (symbolic dims by name), for tests/export.rs.

    .venv/bin/python check_onnx.py encoder.onnx
"""
import sys

import onnx


def dims(value):
    return ",".join(d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim)


model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
print(model.opset_import[0].version, dims(model.graph.input[0]),
      " ".join(dims(o) for o in model.graph.output))
