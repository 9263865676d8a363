"""``scalinglab data info|import|export|keys``: inspect, import and export dataset stores."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect, import and export dataset stores",
        description="Inspect a dataset store, import an .h5/.npz file into one, or export one.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    info = sub.add_parser(
        "info",
        help="summary of a dataset store",
        description="Samples, input shape, targets with units and ranges, aux arrays, producer, creation time, "
        "version and resume state of a dataset store.",
    )
    info.add_argument("path", metavar="PATH", help="dataset store directory")
    info.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    info.set_defaults(func=_info)

    imp = sub.add_parser(
        "import",
        help="import an .h5/.npz file into a new dataset store",
        description="Import named arrays of an .h5/.npz file into a new dataset store, validating shapes, "
        "dtypes and NaN/inf. Use 'scalinglab data keys FILE' to list the arrays of a file.",
    )
    imp.add_argument("file", metavar="FILE", help="source file (.h5, .hdf5 or .npz)")
    imp.add_argument("--inputs", required=True, metavar="KEY", help="key of the inputs array [N,C,H,W] or [N,F]")
    imp.add_argument(
        "--targets", required=True, metavar="KEY[,KEY]",
        help="key(s) of the targets: one [N,P] array and/or several [N] arrays, comma-separated",
    )  # fmt: skip
    imp.add_argument("--out", required=True, metavar="PATH", help="dataset store to create (must not exist)")
    imp.add_argument(
        "--target-names", metavar="NAME[,NAME]", default=None,
        help="one name per target column (default: the key names, KEY_j for columns of a 2-D array)",
    )  # fmt: skip
    imp.add_argument("--units", metavar="UNIT[,UNIT]", default=None, help="one unit per target (default: none)")
    imp.add_argument("--aux", metavar="KEY[,KEY]", default=None, help="auxiliary per-sample arrays to keep")
    imp.add_argument("--chunk-size", type=int, default=None, help="samples per chunk (default: about 4 MiB)")
    imp.add_argument("--producer", default="import", help="producer name recorded in the metadata")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=_import)

    exp = sub.add_parser(
        "export",
        help="export a dataset store to .npz or .h5",
        description="Write inputs, targets, target_names, target_units, aux/<name>, metadata and state of a "
        "dataset store to an .npz or .h5 file.",
    )
    exp.add_argument("path", metavar="PATH", help="dataset store directory")
    exp.add_argument("--out", required=True, metavar="FILE", help="output file, .npz or .h5")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_export)

    keys = sub.add_parser(
        "keys",
        help="list the arrays of an .h5/.npz file",
        description="List every array of an .h5/.npz file with its shape and dtype (to choose import keys).",
    )
    keys.add_argument("file", metavar="FILE", help=".h5/.hdf5 or .npz file")
    keys.set_defaults(func=_keys)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.6g}"


def _info(args) -> int:
    from scalinglab.data.store import DatasetStore

    summary = DatasetStore.open(args.path).summary()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    lines = [
        f"dataset store  {summary['path']}",
        f"samples        {summary['num_samples']}",
        f"input shape    {tuple(summary['input_shape'])}  ({summary['input_dtype']}, "
        f"{summary['chunk_size']} samples per chunk)",
        "targets",
    ]
    width = max(len(t["name"]) for t in summary["targets"])
    for t in summary["targets"]:
        unit = f"[{t['unit']}]" if t["unit"] else "[-]"
        lines.append(f"  {t['name']:<{width}}  {unit:<8} min {_fmt(t['min'])}  max {_fmt(t['max'])}")
    lines.append("aux arrays" + ("" if summary["aux"] else "     none"))
    for a in summary["aux"]:
        lines.append(f"  {a['name']}  {a['dtype']}  per-sample shape {tuple(a['shape'])}")
    lines += [
        f"producer       {summary['producer']}",
        f"created        {summary['created_at']}",
        f"version        scalinglab {summary['scalinglab_version']}",
        f"config         {json.dumps(summary['config'], sort_keys=True)}",
        f"state          {json.dumps(summary['state'], sort_keys=True)}",
    ]
    if summary["metadata"]:
        lines.append(f"metadata       {json.dumps(summary['metadata'], sort_keys=True)}")
    print("\n".join(lines))
    return 0


def _import(args) -> int:
    from scalinglab.data.io import import_file

    store = import_file(
        args.file, args.out, inputs=args.inputs, targets=args.targets, target_names=args.target_names,
        units=args.units, aux=args.aux, chunk_size=args.chunk_size, metadata={"producer": args.producer},
        quiet=args.quiet,
    )  # fmt: skip
    print(f"imported {store.num_samples} samples into {store.path} (targets: {', '.join(store.target_names)})")
    return 0


def _export(args) -> int:
    from scalinglab.data.io import export_store
    from scalinglab.data.store import DatasetStore

    store = DatasetStore.open(args.path)
    out = export_store(store, args.out, quiet=args.quiet)
    print(f"exported {store.num_samples} samples to {out}")
    return 0


def _keys(args) -> int:
    from scalinglab.data.io import list_keys

    for key, (shape, dtype) in list_keys(args.file).items():
        print(f"{key}  {shape}  {dtype}")
    return 0
