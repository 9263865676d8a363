"""``scalinglab data info|import|export|keys|verify|repair``: inspect, import, export and check dataset stores."""

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

    verify = sub.add_parser(
        "verify",
        help="check every chunk of a dataset store",
        description="Read every committed chunk of every array of a dataset store and check that its file "
        "exists, decodes and matches the checksum of the commit record. Prints one line per damaged chunk "
        "(array and sample range). Exit status 0: intact; 1: damage found; 2: not a store.",
    )
    verify.add_argument("path", metavar="PATH", help="dataset store directory")
    verify.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    verify.set_defaults(func=_verify)

    repair = sub.add_parser(
        "repair",
        help="re-simulate the damaged sample ranges of a dataset store",
        description="Replace the samples of damaged chunks (see 'data verify') in place by re-simulating "
        "them with the producer that made the store. Only producers that registered a deterministic "
        "re-simulator can be repaired; for any other the command refuses and changes nothing.",
    )
    repair.add_argument("path", metavar="PATH", help="dataset store directory")
    repair.set_defaults(func=_repair)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.6g}"


def _short(state: dict) -> dict:
    """The resume state with long lists (a campaign's chunk records) shown as their length (``--json``: all)."""
    return {k: f"[{len(v)} entries]" if isinstance(v, list) and len(v) > 8 else v for k, v in state.items()}


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
        f"state          {json.dumps(_short(summary['state']), sort_keys=True)}",
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


def _print_report(report) -> None:
    print(
        f"dataset store {report.path}: {report.num_samples} samples, {report.num_chunks} chunks checked"
        + (f" ({report.num_unrecorded} written before checksums: presence and decoding only)"
           if report.num_unrecorded else "")
    )  # fmt: skip
    for d in report.damage:
        print(f"DAMAGED {d.describe()}")
    print("intact" if report.ok else f"{len(report.damage)} damaged chunk(s); samples " + ", ".join(
        f"{a}..{b - 1}" for a, b in report.damaged_ranges()))  # fmt: skip


def _verify(args) -> int:
    from scalinglab.data.integrity import verify_store

    report = verify_store(args.path)
    if report.error is not None:
        raise ValueError(report.error)
    if args.json:
        print(json.dumps({
            "path": str(report.path), "num_samples": report.num_samples, "num_chunks": report.num_chunks,
            "num_unrecorded": report.num_unrecorded, "ok": report.ok,
            "damage": [{"array": d.key, "start": d.start, "stop": d.stop, "reason": d.reason} for d in report.damage],
        }, sort_keys=True))  # fmt: skip
    else:
        _print_report(report)
    return 0 if report.ok else 1


#: Producer modules that register a re-simulator (``scalinglab.data.integrity.register_resimulator``) on import.
RESIMULATOR_MODULES = ("scalinglab.simulators.moire.resimulate",)


def _repair(args) -> int:
    import importlib

    from scalinglab.data.integrity import repair_store

    for name in RESIMULATOR_MODULES:
        importlib.import_module(name)
    report = repair_store(args.path, log=print)
    _print_report(report)
    return 0 if report.ok else 1
