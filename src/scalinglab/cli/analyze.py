"""``scalinglab analyze``: paper 2's error analyses of trained estimators and generators (figures, CSV, HTML)."""

from __future__ import annotations

from pathlib import Path


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--snr expects comma-separated numbers in dB, got {text!r}") from None
    if not vals:
        raise ValueError("--snr is empty")
    return vals


def handler(args) -> int:
    from scalinglab.jobs.paper2 import AnalyzeConfig, analyze

    if args.bins < 2:
        raise ValueError(f"--bins must be >= 2, got {args.bins}")
    config = AnalyzeConfig(snr_db=_floats(args.snr), fm_store=args.fm_store, boundaries=not args.no_boundaries,
                           num_bins=args.bins, num_gallery=args.gallery, seed=args.seed, device=args.device,
                           quiet=args.quiet)
    source = Path(args.source)
    if args.out:
        out = Path(args.out)
    else:
        out = source / "analysis" if source.is_dir() else source.with_name(source.stem + "_analysis")
    summary = analyze(args.source, out, data=args.data, config=config)
    for fam, res in summary["regression"].items():
        parts = [f"{n}: MAE {m['mae'][0]:.3g}, MAPE {m['mape'][0]:.3g}%, R^2 {m['r2'][0]:.4f}"
                 for n, m in res["metrics"].items()]
        print(f"{fam}: " + "; ".join(parts))
        if "pca_leading_share" in res:
            print(f"  error PCA: leading component {100 * res['pca_leading_share'][0]:.1f}% ({res['pca_relation']})")
    for label, res in summary["noise"].items():
        worst = {t: v[-1] for t, v in res["mape"].items()}
        text = ", ".join(f"{t} {v:.3g}%" for t, v in worst.items())
        print(f"noise, {label}: MAPE at {res['snr_db'][-1]:g} dB {text}")
    if summary["generator"]:
        g = summary["generator"]
        print("generator: image MAE " + ", ".join(f"{k} {v[0]:.3g}" for k, v in g.get("mae_by_phase", {}).items()))
    print(f"wrote {summary['page']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="paper 2 error analyses of trained networks: figures, CSV tables and an HTML page",
        description="Evaluate the networks kept by a sweep (save = [\"models\", \"predictions\"]), a `train --out` "
                    "directory or one checkpoint on their dataset, and write paper 2's figures: predicted vs true "
                    "(Fig. 3), binned MAE (Fig. 4), error PCA (Fig. 5), MAE vs distance to the FM-NCD and NCD-MD "
                    "boundaries (Fig. 6), MAPE vs SNR (Fig. 7, clean- and noise-trained side by side), interval "
                    "coverage and pulls, and for generators Figs. 8-10 and an image gallery.",
    )
    p.add_argument("source", metavar="RESULTS_OR_CHECKPOINT",
                   help="sweep results directory, train output directory, or a .pt checkpoint")
    p.add_argument("--data", metavar="STORE", help="dataset store (default: the one the networks were trained on)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: RESULTS/analysis)")
    p.add_argument("--fm-store", metavar="STORE", help="FM side store of the campaign (default: <data>_fm)")
    p.add_argument("--no-boundaries", action="store_true",
                   help="skip the phase-boundary distances (datasets without phase labels or FM store)")
    p.add_argument("--snr", default="20,15,10,5,0,-5,-10", metavar="DB_LIST",
                   help="SNRs of the noisy test sets in dB (default paper 2's 20 .. -10)")
    p.add_argument("--bins", type=int, default=10, help="bins along each normalized parameter (default 10)")
    p.add_argument("--gallery", type=int, default=4, help="images in the generator gallery (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test-set noise (default 0)")
    p.add_argument("--device", default="cpu", help="torch device for evaluation (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)
