"""Turn a TensorFlow.js graph model into a frozen TensorFlow GraphDef, with protobuf alone.

A TFJS graph model is a GraphDef written as JSON (``model.json``'s ``modelTopology``)
whose constants have had their values moved to binary weight shards. Rebuilding the
frozen ``.pb`` needs only the GraphDef message classes, so this module declares the
handful of TensorFlow messages it needs (field numbers as in TensorFlow's
``tensorflow/core/framework/*.proto``) with protobuf's descriptor API: neither
TensorFlow nor protoc is needed. OpenVINO then reads the ``.pb`` directly
(:func:`tfjs_to_openvino`).

What the rebuild has to get right (each one broke the model when missed):

* scalar constants need an explicit, empty ``tensor_shape`` (else they read as size 0);
* TFJS stores int64 constants as int32: they are widened back to the graph's dtype;
* weights quantised to float16 or to uint8/uint16 (affine) are restored to float32;
* TFJS-only fused ops (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``,
  ``_FusedMatMul``) are split back into the plain TensorFlow ops they stand for;
* ``SparseToDense`` with no indices (an onnx-tf leftover) and maths on constants are folded.

The conversion is deterministic: the same package gives byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

_F = descriptor_pb2.FieldDescriptorProto

# TensorFlow DataType values (tensorflow/core/framework/types.proto) and their numpy types.
_DTYPES = {
    "DT_INVALID": (0, None),
    "DT_FLOAT": (1, np.float32),
    "DT_DOUBLE": (2, np.float64),
    "DT_INT32": (3, np.int32),
    "DT_UINT8": (4, np.uint8),
    "DT_INT16": (5, np.int16),
    "DT_INT8": (6, np.int8),
    "DT_STRING": (7, None),
    "DT_COMPLEX64": (8, None),
    "DT_INT64": (9, np.int64),
    "DT_BOOL": (10, np.bool_),
    "DT_HALF": (19, np.float16),
    "DT_UINT16": (17, np.uint16),
    "DT_UINT32": (22, np.uint32),
    "DT_UINT64": (23, np.uint64),
}
_NUMPY_BY_ENUM = {number: dtype for number, dtype in _DTYPES.values()}
_TFJS_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8,
                "uint16": np.uint16, "float16": np.float16}


def _field(message, name: str, number: int, kind: int, label: int = _F.LABEL_OPTIONAL,
           type_name: str | None = None, packed: bool = False) -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    if packed:
        field.options.packed = True


def _map_field(message, name: str, number: int, value_type: str) -> None:
    entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=value_type)
    _field(message, name, number, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, f"{message.name}.{entry_name}")


def _build_messages() -> dict[str, Any]:
    """Declare GraphDef and the messages it contains (a subset of TensorFlow's protos)."""
    fd = descriptor_pb2.FileDescriptorProto(name="safecity_tf_graph.proto", package="tensorflow", syntax="proto3")
    rep, msg = _F.LABEL_REPEATED, _F.TYPE_MESSAGE

    enum = fd.enum_type.add(name="DataType")
    for name, (number, _) in sorted(_DTYPES.items(), key=lambda item: item[1][0]):
        enum.value.add(name=name, number=number)

    shape = fd.message_type.add(name="TensorShapeProto")
    dim = shape.nested_type.add(name="Dim")
    _field(dim, "size", 1, _F.TYPE_INT64)
    _field(dim, "name", 2, _F.TYPE_STRING)
    _field(shape, "dim", 2, msg, rep, ".tensorflow.TensorShapeProto.Dim")
    _field(shape, "unknown_rank", 3, _F.TYPE_BOOL)

    tensor = fd.message_type.add(name="TensorProto")
    _field(tensor, "dtype", 1, _F.TYPE_ENUM, type_name=".tensorflow.DataType")
    _field(tensor, "tensor_shape", 2, msg, type_name=".tensorflow.TensorShapeProto")
    _field(tensor, "version_number", 3, _F.TYPE_INT32)
    _field(tensor, "tensor_content", 4, _F.TYPE_BYTES)
    _field(tensor, "float_val", 5, _F.TYPE_FLOAT, rep, packed=True)
    _field(tensor, "double_val", 6, _F.TYPE_DOUBLE, rep, packed=True)
    _field(tensor, "int_val", 7, _F.TYPE_INT32, rep, packed=True)
    _field(tensor, "string_val", 8, _F.TYPE_BYTES, rep)
    _field(tensor, "int64_val", 10, _F.TYPE_INT64, rep, packed=True)
    _field(tensor, "bool_val", 11, _F.TYPE_BOOL, rep, packed=True)
    _field(tensor, "half_val", 13, _F.TYPE_INT32, rep, packed=True)

    attr = fd.message_type.add(name="AttrValue")
    lst = attr.nested_type.add(name="ListValue")
    _field(lst, "s", 2, _F.TYPE_BYTES, rep)
    _field(lst, "i", 3, _F.TYPE_INT64, rep, packed=True)
    _field(lst, "f", 4, _F.TYPE_FLOAT, rep, packed=True)
    _field(lst, "b", 5, _F.TYPE_BOOL, rep, packed=True)
    _field(lst, "type", 6, _F.TYPE_ENUM, rep, ".tensorflow.DataType", packed=True)
    _field(lst, "shape", 7, msg, rep, ".tensorflow.TensorShapeProto")
    _field(lst, "tensor", 8, msg, rep, ".tensorflow.TensorProto")
    _field(lst, "func", 9, msg, rep, ".tensorflow.NameAttrList")
    attr.oneof_decl.add(name="value")
    for name, number, kind, type_name in [
        ("list", 1, msg, ".tensorflow.AttrValue.ListValue"),
        ("s", 2, _F.TYPE_BYTES, None),
        ("i", 3, _F.TYPE_INT64, None),
        ("f", 4, _F.TYPE_FLOAT, None),
        ("b", 5, _F.TYPE_BOOL, None),
        ("type", 6, _F.TYPE_ENUM, ".tensorflow.DataType"),
        ("shape", 7, msg, ".tensorflow.TensorShapeProto"),
        ("tensor", 8, msg, ".tensorflow.TensorProto"),
        ("placeholder", 9, _F.TYPE_STRING, None),
        ("func", 10, msg, ".tensorflow.NameAttrList"),
    ]:
        _field(attr, name, number, kind, type_name=type_name)
        attr.field[-1].oneof_index = 0

    name_attr = fd.message_type.add(name="NameAttrList")
    _field(name_attr, "name", 1, _F.TYPE_STRING)
    _map_field(name_attr, "attr", 2, ".tensorflow.AttrValue")

    node = fd.message_type.add(name="NodeDef")
    _field(node, "name", 1, _F.TYPE_STRING)
    _field(node, "op", 2, _F.TYPE_STRING)
    _field(node, "input", 3, _F.TYPE_STRING, rep)
    _field(node, "device", 4, _F.TYPE_STRING)
    _map_field(node, "attr", 5, ".tensorflow.AttrValue")

    versions = fd.message_type.add(name="VersionDef")
    _field(versions, "producer", 1, _F.TYPE_INT32)
    _field(versions, "min_consumer", 2, _F.TYPE_INT32)
    _field(versions, "bad_consumers", 3, _F.TYPE_INT32, rep, packed=True)

    graph = fd.message_type.add(name="GraphDef")
    _field(graph, "node", 1, msg, rep, ".tensorflow.NodeDef")
    _field(graph, "version", 3, _F.TYPE_INT32)
    _field(graph, "versions", 4, msg, type_name=".tensorflow.VersionDef")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    names = ("GraphDef", "NodeDef", "AttrValue", "TensorProto", "TensorShapeProto")
    get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
    if get_class is None:  # pragma: no cover - older protobuf
        get_class = message_factory.MessageFactory(pool).GetPrototype
    return {name: get_class(pool.FindMessageTypeByName(f"tensorflow.{name}")) for name in names}


_MESSAGES: dict[str, Any] | None = None


def messages() -> dict[str, Any]:
    """The GraphDef message classes (built once)."""
    global _MESSAGES
    if _MESSAGES is None:
        _MESSAGES = _build_messages()
    return _MESSAGES


# --------------------------------------------------------------------------- weights


def read_weights(model_json: Path) -> dict[str, np.ndarray]:
    """Decode every weight of a TFJS model from its shards, dequantised."""
    spec = json.loads(Path(model_json).read_text())
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        buffer = b"".join((model_json.parent / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(s) for s in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = entry.get("quantization")
            stored = _TFJS_DTYPES[quant["dtype"]] if quant else _TFJS_DTYPES[entry["dtype"]]
            size = count * np.dtype(stored).itemsize
            if entry["dtype"] == "string":
                raise NotImplementedError(f"string weight {entry['name']!r} is not supported")
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            else:
                values = raw
            weights[entry["name"]] = values.astype(_TFJS_DTYPES[entry["dtype"]]).reshape(shape)
        if offset != len(buffer):
            raise ValueError(f"weight shards of {model_json.name} hold {len(buffer)} bytes, manifest uses {offset}")
    return weights


# --------------------------------------------------------------------------- graph


def _set_tensor(node: Any, array: np.ndarray) -> None:
    """Make ``node`` a Const holding ``array`` (explicit shape, scalars included)."""
    enum = {np.dtype(t): n for n, t in _NUMPY_BY_ENUM.items() if t is not None}[array.dtype]
    node.op = "Const"
    del node.input[:]
    for key in list(node.attr):
        if key not in ("dtype", "value"):
            del node.attr[key]
    node.attr["dtype"].type = enum
    tensor = node.attr["value"].tensor
    tensor.Clear()
    tensor.dtype = enum
    tensor.tensor_shape.SetInParent()  # an empty shape means "scalar" only when present
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=int(size))
    tensor.tensor_content = np.ascontiguousarray(array).tobytes()


def _const_value(consts: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    base, _, port = name.partition(":")
    return consts.get(base) if port in ("", "0") else None


def _split_fused(graph: Any) -> None:
    """Replace TFJS's fused ops by the plain TensorFlow ops they stand for."""
    plain = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
             "_FusedMatMul": "MatMul"}
    keep_attrs = {
        "Conv2D": {"T", "strides", "padding", "explicit_paddings", "data_format", "dilations", "use_cudnn_on_gpu"},
        "DepthwiseConv2dNative": {"T", "strides", "padding", "explicit_paddings", "data_format", "dilations"},
        "MatMul": {"T", "transpose_a", "transpose_b"},
    }
    NodeDef = messages()["NodeDef"]
    out = []
    for node in graph.node:
        if node.op not in plain:
            out.append(node)
            continue
        fused = [s.decode() for s in node.attr["fused_ops"].list.s] if "fused_ops" in node.attr else []
        n_args = node.attr["num_args"].i if "num_args" in node.attr else len(node.input) - 2
        data_inputs = [i for i in node.input if not i.startswith("^")]
        controls = [i for i in node.input if i.startswith("^")]
        x, w, args = data_inputs[0], data_inputs[1], data_inputs[2 : 2 + n_args]
        name = node.name
        core = NodeDef(name=f"{name}/core", op=plain[node.op], input=[x, w, *controls])
        for key, value in node.attr.items():
            if key in keep_attrs[core.op]:
                core.attr[key].CopyFrom(value)
        out.append(core)
        current = core.name
        dtype = node.attr["T"]
        steps: list[tuple[str, list[str], dict[str, Any]]] = []
        queue = list(fused)
        arg_pos = 0
        while queue:
            op = queue.pop(0)
            if op == "BiasAdd":
                extra = {"data_format": node.attr["data_format"]} if "data_format" in node.attr else {}
                steps.append(("BiasAdd", [args[arg_pos]], extra))
                arg_pos += 1
            elif op in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh"):
                steps.append((op, [], {}))
            elif op == "LeakyRelu":
                steps.append(("LeakyRelu", [], {"alpha": node.attr["leakyrelu_alpha"]}))
            elif op == "Prelu":
                # prelu(x) = relu(x) - alpha * relu(-x)
                steps.append(("Prelu", [args[arg_pos]], {}))
                arg_pos += 1
            else:
                raise NotImplementedError(f"fused op {op!r} in {node.op} {name!r} is not supported")
        for index, (op, inputs, extra) in enumerate(steps):
            last = index == len(steps) - 1
            step_name = name if last else f"{name}/{op.lower()}_{index}"
            if op == "Prelu":
                pos = NodeDef(name=f"{step_name}/pos", op="Relu", input=[current])
                neg_in = NodeDef(name=f"{step_name}/neg_in", op="Neg", input=[current])
                neg = NodeDef(name=f"{step_name}/neg", op="Relu", input=[neg_in.name])
                scaled = NodeDef(name=f"{step_name}/scaled", op="Mul", input=[inputs[0], neg.name])
                result = NodeDef(name=step_name, op="Sub", input=[pos.name, scaled.name])
                for part in (pos, neg_in, neg, scaled, result):
                    part.attr["T"].CopyFrom(dtype)
                out.extend([pos, neg_in, neg, scaled, result])
            else:
                part = NodeDef(name=step_name, op=op, input=[current, *inputs])
                part.attr["T"].CopyFrom(dtype)
                for key, value in extra.items():
                    part.attr[key].CopyFrom(value)
                out.append(part)
            current = step_name
        if not steps:
            core.name = name
    del graph.node[:]
    graph.node.extend(out)


_FOLDABLE = {"Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply}


def _fold_constants(graph: Any, consts: dict[str, np.ndarray]) -> None:
    """Evaluate the few constant-only nodes onnx-tf leaves behind.

    ``SparseToDense`` with no indices is its default value in the output shape (an
    all-zero offset added to a reshape target), and element-wise maths on constants
    is computed once, so every shape in the graph is a plain constant.
    """
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.op == "SparseToDense":
                indices, shape, _values, default = (_const_value(consts, i) for i in node.input[:4])
                if indices is None or shape is None or default is None or indices.size:
                    continue
                array = np.full(shape.astype(np.int64), default, dtype=default.dtype)
            elif node.op in _FOLDABLE:
                args = [_const_value(consts, i) for i in node.input]
                if any(a is None for a in args) or len(args) != 2:
                    continue
                array = _FOLDABLE[node.op](args[0], args[1]).astype(args[0].dtype)
            else:
                continue
            _set_tensor(node, array)
            consts[node.name] = array
            changed = True


def tfjs_to_graphdef(model_json: str | Path) -> Any:
    """Rebuild the frozen GraphDef of a TFJS graph model (``model.json`` + shards)."""
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    if spec.get("format") != "graph-model":
        raise ValueError(f"{model_json.name} is not a TFJS graph model (format={spec.get('format')!r})")
    graph = messages()["GraphDef"]()
    topology = {k: v for k, v in spec["modelTopology"].items() if k in ("node", "versions")}
    json_format.ParseDict(topology, graph, ignore_unknown_fields=True)
    weights = read_weights(model_json)
    consts: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.name not in weights:
            continue
        if node.op != "Const":
            raise ValueError(f"weight {node.name!r} belongs to a {node.op} node")
        want = _NUMPY_BY_ENUM.get(node.attr["dtype"].type)
        if want is None:
            raise NotImplementedError(f"constant {node.name!r} has an unsupported dtype")
        array = weights[node.name].astype(want)  # int64 comes stored as int32: widen back
        _set_tensor(node, array)
        consts[node.name] = array
    missing = [n.name for n in graph.node if n.op == "Const" and n.name not in consts]
    if missing:
        raise ValueError(f"constants without weights: {missing[:5]}")
    _fold_constants(graph, consts)
    _split_fused(graph)
    return graph


def tfjs_to_openvino(model_json: str | Path, xml_out: str | Path, work_dir: str | Path | None = None) -> Path:
    """Convert a TFJS graph model to OpenVINO IR (``.xml`` + ``.bin``) via a frozen ``.pb``."""
    import tempfile

    import openvino as ov  # (its usage reports are declined: safecity.telemetry)

    xml_out = Path(xml_out)
    xml_out.parent.mkdir(parents=True, exist_ok=True)
    graph = tfjs_to_graphdef(model_json)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        pb = Path(tmp) / (Path(model_json).stem + ".pb")
        pb.write_bytes(graph.SerializeToString(deterministic=True))
        model = ov.convert_model(str(pb))
    ov.save_model(model, str(xml_out), compress_to_fp16=False)
    return xml_out


# --------------------------------------------------------------------------- ONNX


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def graphdef_to_onnx(
    graph: Any,
    path: str | Path,
    inputs: dict[str, str],
    outputs: dict[str, str],
    dynamic_dims: dict[int, str] | None = None,
    opset: int = 17,
) -> Path:
    """Write a frozen GraphDef as ONNX, for the onnxruntime fallback.

    Covers the ops of converted detection networks (convolutions, pooling, resizes,
    element-wise maths, concat/split/reshape/transpose/pad); anything else raises
    ``NotImplementedError``. ``inputs`` maps placeholder names to ONNX input names,
    ``outputs`` maps TF tensor names to ONNX output names (in output order).
    ``dynamic_dims`` makes input axes symbolic (e.g. ``{2: "height", 3: "width"}``);
    constant resize sizes then become scale factors, so the graph follows the input.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    consts: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op == "Const":
            tensor = node.attr["value"].tensor
            dtype = _NUMPY_BY_ENUM[tensor.dtype]
            shape = [d.size for d in tensor.tensor_shape.dim]
            consts[f"{node.name}:0"] = np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)

    nodes: list[Any] = []
    initializers: dict[str, np.ndarray] = {}
    onnx_inputs = []
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}/_onnx{counter[0]}"

    def const(name: str, array: np.ndarray) -> str:
        initializers[name] = np.asarray(array)
        return name

    def value(name: str) -> np.ndarray:
        key = _tensor_name(name)
        if key not in consts:
            raise NotImplementedError(f"{name!r} must be a constant for ONNX export")
        return consts[key]

    def nhwc(node: Any) -> bool:
        return node.attr["data_format"].s in (b"", b"NHWC") if "data_format" in node.attr else True

    def to_nchw(x: str, name: str) -> str:
        out = fresh(name)
        nodes.append(helper.make_node("Transpose", [x], [out], perm=[0, 3, 1, 2]))
        return out

    def to_nhwc(x: str, out: str) -> None:
        nodes.append(helper.make_node("Transpose", [x], [out], perm=[0, 2, 3, 1]))

    def window(node: Any, key: str) -> list[int]:
        values = list(node.attr[key].list.i)
        return values[1:3] if nhwc(node) else values[2:4]

    def padding(node: Any) -> dict[str, Any]:
        mode = node.attr["padding"].s.decode()
        if mode == "VALID":
            return {}
        if mode == "SAME":
            return {"auto_pad": "SAME_UPPER"}
        explicit = list(node.attr["explicit_paddings"].list.i)
        pairs = np.asarray(explicit, np.int64).reshape(4, 2)
        spatial = pairs[1:3] if nhwc(node) else pairs[2:4]
        return {"pads": [int(spatial[0, 0]), int(spatial[1, 0]), int(spatial[0, 1]), int(spatial[1, 1])]}

    simple = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div", "Maximum": "Max",
              "Minimum": "Min", "Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Elu": "Elu", "Neg": "Neg",
              "Identity": "Identity", "Exp": "Exp", "Sqrt": "Sqrt", "Rsqrt": None, "Relu6": None,
              "BiasAdd": "Add", "MatMul": None}
    for node in graph.node:
        op, name = node.op, node.name
        ins = [_tensor_name(i) for i in node.input if not i.startswith("^")]
        out = f"{name}:0"
        if op == "Const":
            continue
        if op == "Placeholder":
            dims: list[Any] = [d.size for d in node.attr["shape"].shape.dim]
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(_NUMPY_BY_ENUM[node.attr["dtype"].type]))
            onnx_inputs.append(helper.make_tensor_value_info(inputs.get(name, out), elem, dims))
            if name in inputs:
                nodes.append(helper.make_node("Identity", [inputs[name]], [out]))
            continue
        if any(i in consts for i in ins):
            for i in ins:
                if i in consts:
                    initializers.setdefault(i, consts[i])
        if op in simple and simple[op]:
            if op == "BiasAdd" and not nhwc(node):
                bias = value(node.input[1]).reshape(1, -1, 1, 1)
                ins = [ins[0], const(f"{name}/bias", bias)]
            nodes.append(helper.make_node(simple[op], ins, [out]))
        elif op == "Relu6":
            nodes.append(helper.make_node("Clip", [ins[0], const(f"{name}/lo", np.float32(0)),
                                                   const(f"{name}/hi", np.float32(6))], [out]))
        elif op == "Rsqrt":
            root = fresh(name)
            nodes.append(helper.make_node("Sqrt", ins, [root]))
            nodes.append(helper.make_node("Reciprocal", [root], [out]))
        elif op == "Cast":
            target = helper.np_dtype_to_tensor_dtype(np.dtype(_NUMPY_BY_ENUM[node.attr["DstT"].type]))
            nodes.append(helper.make_node("Cast", ins, [out], to=target))
        elif op == "Cast":
            target = helper.np_dtype_to_tensor_dtype(np.dtype(_NUMPY_BY_ENUM[node.attr["DstT"].type]))
            nodes.append(helper.make_node("Cast", ins, [out], to=target))
        elif op == "LeakyRelu":
            nodes.append(helper.make_node("LeakyRelu", ins, [out], alpha=node.attr["alpha"].f))
        elif op == "MatMul":
            a, b = ins
            if node.attr["transpose_a"].b:
                a2 = fresh(name)
                nodes.append(helper.make_node("Transpose", [a], [a2], perm=[1, 0]))
                a = a2
            if node.attr["transpose_b"].b:
                b2 = fresh(name)
                nodes.append(helper.make_node("Transpose", [b], [b2], perm=[1, 0]))
                b = b2
            nodes.append(helper.make_node("MatMul", [a, b], [out]))
        elif op == "Transpose":
            nodes.append(helper.make_node("Transpose", [ins[0]], [out], perm=[int(p) for p in value(node.input[1])]))
        elif op in ("Pad", "PadV2", "MirrorPad"):
            pads = value(node.input[1]).astype(np.int64)
            args = [ins[0], const(f"{name}/pads", np.concatenate([pads[:, 0], pads[:, 1]]))]
            attrs: dict[str, Any] = {"mode": "constant"}
            if op == "PadV2":
                args.append(ins[2])
            elif op == "MirrorPad":
                attrs["mode"] = "reflect" if node.attr["mode"].s == b"REFLECT" else "edge"
            nodes.append(helper.make_node("Pad", args, [out], **attrs))
        elif op in ("Conv2D", "DepthwiseConv2dNative"):
            kernel = value(node.input[1])  # H, W, in, out (depthwise: H, W, C, multiplier)
            h, w, cin, cout = kernel.shape
            if op == "Conv2D":
                weight, group = kernel.transpose(3, 2, 0, 1), 1
            else:
                weight, group = kernel.reshape(h, w, 1, cin * cout).transpose(3, 2, 0, 1), cin
            x = to_nchw(ins[0], name) if nhwc(node) else ins[0]
            y = fresh(name) if nhwc(node) else out
            nodes.append(helper.make_node(
                "Conv", [x, const(f"{name}/weight", np.ascontiguousarray(weight))], [y],
                kernel_shape=[h, w], strides=window(node, "strides"),
                dilations=window(node, "dilations") if "dilations" in node.attr else [1, 1],
                group=group, **padding(node)))
            if nhwc(node):
                to_nhwc(y, out)
        elif op in ("MaxPool", "AvgPool"):
            x = to_nchw(ins[0], name) if nhwc(node) else ins[0]
            y = fresh(name) if nhwc(node) else out
            extra = {} if op == "MaxPool" else {"count_include_pad": 0}
            nodes.append(helper.make_node(
                "MaxPool" if op == "MaxPool" else "AveragePool", [x], [y],
                kernel_shape=window(node, "ksize"), strides=window(node, "strides"), **padding(node), **extra))
            if nhwc(node):
                to_nhwc(y, out)
        elif op in ("ResizeBilinear", "ResizeNearestNeighbor"):
            size = value(node.input[1]).astype(np.int64)
            if node.attr["align_corners"].b:
                transform = "align_corners"
            elif node.attr["half_pixel_centers"].b:
                transform = "half_pixel" if op == "ResizeBilinear" else "tf_half_pixel_for_nn"
            else:
                transform = "asymmetric"
            x = to_nchw(ins[0], name)
            y = fresh(name)
            sizes = const(f"{name}/sizes", np.concatenate([[0, 0], size]).astype(np.int64))  # N, C filled in below
            nodes.append(helper.make_node(
                "Resize", [x, "", "", sizes], [y], mode="linear" if op == "ResizeBilinear" else "nearest",
                coordinate_transformation_mode=transform, nearest_mode="floor"))
            to_nhwc(y, out)
        elif op == "ConcatV2":
            axis = int(value(node.input[-1]))
            nodes.append(helper.make_node("Concat", ins[:-1], [out], axis=axis))
        elif op in ("SplitV", "Split"):
            if op == "SplitV":
                data, splits, axis = ins[0], value(node.input[1]).astype(np.int64), int(value(node.input[2]))
            else:
                data, axis = ins[1], int(value(node.input[0]))
                splits = None
            n_out = node.attr["num_split"].i
            outs = [f"{name}:{k}" for k in range(n_out)]
            args = [data] + ([const(f"{name}/split", splits)] if splits is not None else [])
            extra = {} if splits is not None else {"num_outputs": n_out}
            nodes.append(helper.make_node("Split", args, outs, axis=axis, **extra))
        elif op == "Reshape":
            shape = value(node.input[1]).astype(np.int64)
            if (shape == 0).any():
                raise NotImplementedError(f"Reshape {name!r} to a zero-sized dimension")
            nodes.append(helper.make_node("Reshape", [ins[0], const(f"{name}/shape", shape)], [out]))
        elif op == "Squeeze":
            axes = np.asarray(list(node.attr["squeeze_dims"].list.i), np.int64)
            nodes.append(helper.make_node("Squeeze", [ins[0], const(f"{name}/axes", axes)], [out]))
        else:
            raise NotImplementedError(f"op {op} ({name!r}) has no ONNX export")

    onnx_outputs = []
    for tf_name, onnx_name in outputs.items():
        nodes.append(helper.make_node("Identity", [_tensor_name(tf_name)], [onnx_name]))
        onnx_outputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, None))

    # Only the initialisers that nodes use, in a stable order.
    used = {i for n in nodes for i in n.input}
    graph_proto = helper.make_graph(
        nodes, "graph", onnx_inputs, onnx_outputs,
        [numpy_helper.from_array(np.ascontiguousarray(a), k) for k, a in sorted(initializers.items()) if k in used])
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="safecity.convert_tfjs")
    model.ir_version = 8
    _resize_sizes_to_scales(model, follow_input=bool(dynamic_dims))
    # Output ranks from shape inference at the exported size; with dynamic inputs the
    # output sizes vary, so only the rank is declared.
    inferred = {o.name: o for o in onnx.shape_inference.infer_shapes(model).graph.output}
    for graph_output in model.graph.output:
        found = inferred.get(graph_output.name)
        dims = found.type.tensor_type.shape.dim if found is not None else []
        shape = graph_output.type.tensor_type.shape
        for dim in dims:
            added = shape.dim.add()
            if not dynamic_dims:
                added.CopyFrom(dim)
    for axis, label in (dynamic_dims or {}).items():
        for graph_input in model.graph.input:
            graph_input.type.tensor_type.shape.dim[axis].dim_param = label
    onnx.checker.check_model(model)
    Path(path).write_bytes(model.SerializeToString())
    return Path(path)


def _resize_sizes_to_scales(model: Any, follow_input: bool) -> None:
    """Complete each Resize's target size (N, C from shape inference); with
    ``follow_input``, turn the whole-number (or 1/whole-number) size ratios into
    scales, so the graph works at other input sizes."""
    import onnx
    from onnx import numpy_helper

    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    if not resizes:
        return
    inits = {i.name: i for i in model.graph.initializer}
    shapes_in: dict[str, np.ndarray] = {}
    for node in resizes:  # in graph order: each inference sees the earlier resizes completed
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
        shape_in = shapes.get(node.input[0])
        sizes_name = node.input[3]
        sizes = numpy_helper.to_array(inits[sizes_name]).copy()
        if not shape_in or len(shape_in) != 4 or not all(shape_in):
            raise ValueError(f"cannot infer the input shape of resize {node.output[0]}")
        sizes[:2] = shape_in[:2]
        inits[sizes_name].CopyFrom(numpy_helper.from_array(sizes.astype(np.int64), sizes_name))
        shapes_in[node.output[0]] = np.asarray(shape_in, np.float64)
    if follow_input:
        for node in resizes:
            shape_in = shapes_in[node.output[0]]
            sizes = numpy_helper.to_array(inits[node.input[3]]).astype(np.float64)
            ratios = sizes / shape_in
            for r in ratios[2:]:
                if not (float(r).is_integer() or float(1 / r).is_integer()):
                    raise ValueError(f"resize by {r} cannot follow a dynamic input size")
            scales = f"{node.input[3]}/scales"
            model.graph.initializer.append(numpy_helper.from_array(ratios.astype(np.float32), scales))
            node.input[2] = scales
            del node.input[3:]
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def prepend_image_input(graph: Any, placeholder: str, name: str, mean: list[float], std: list[float],
                        channels_first: bool = True) -> None:
    """Let the graph take a uint8 N x H x W x C image and normalise it itself.

    The float ``placeholder`` becomes ``(cast(name) - mean) / std``, transposed to NCHW
    when the network expects ``channels_first``: preprocessing outside the network
    shrinks to a resize, and the runtime fuses the arithmetic into the first layer.
    """
    NodeDef = messages()["NodeDef"]
    old = next((n for n in graph.node if n.name == placeholder and n.op == "Placeholder"), None)
    if old is None:
        raise ValueError(f"no placeholder {placeholder!r}")
    dims = [d.size for d in old.attr["shape"].shape.dim]
    n, c, h, w = dims if channels_first else (dims[0], dims[3], dims[1], dims[2])
    image = NodeDef(name=name, op="Placeholder")
    image.attr["dtype"].type = _DTYPES["DT_UINT8"][0]
    for size in (n, h, w, c):
        image.attr["shape"].shape.dim.add(size=size)
    cast = NodeDef(name=f"{name}/float", op="Cast", input=[name])
    cast.attr["SrcT"].type = _DTYPES["DT_UINT8"][0]
    cast.attr["DstT"].type = _DTYPES["DT_FLOAT"][0]
    cast.attr["Truncate"].b = False
    mean_node = NodeDef(name=f"{name}/mean")
    _set_tensor(mean_node, np.asarray(mean, np.float32).reshape(1, 1, 1, c))
    scale_node = NodeDef(name=f"{name}/inv_std")
    _set_tensor(scale_node, (1.0 / np.asarray(std, np.float64)).astype(np.float32).reshape(1, 1, 1, c))
    centred = NodeDef(name=f"{name}/centred", op="Sub", input=[cast.name, mean_node.name])
    scaled = NodeDef(name=f"{name}/scaled", op="Mul", input=[centred.name, scale_node.name])
    for node in (centred, scaled):
        node.attr["T"].type = _DTYPES["DT_FLOAT"][0]
    new_nodes = [image, cast, mean_node, scale_node, centred, scaled]
    if channels_first:
        perm = NodeDef(name=f"{name}/perm")
        _set_tensor(perm, np.asarray([0, 3, 1, 2], np.int32))
        replacement = NodeDef(name=placeholder, op="Transpose", input=[scaled.name, perm.name])
        replacement.attr["T"].type = _DTYPES["DT_FLOAT"][0]
        replacement.attr["Tperm"].type = _DTYPES["DT_INT32"][0]
        new_nodes += [perm, replacement]
    else:
        replacement = NodeDef(name=placeholder, op="Identity", input=[scaled.name])
        replacement.attr["T"].type = _DTYPES["DT_FLOAT"][0]
        new_nodes.append(replacement)
    rest = [node for node in graph.node if node.name != placeholder]
    del graph.node[:]
    graph.node.extend(new_nodes + rest)
