"""Unlearning a vision classifier from θ_pre vs θ_grok.

Offline (default): the `digits` preset (sklearn digits, large-init MLP that groks).

    python examples/vision.py                                   # train (or reuse) and compare
    python examples/vision.py --methods ga,rl,salun,scrub --forget-rate 0.15 --seed 0

The paper's protocol with torchvision data and models, when the data is on disk:

    python examples/vision.py --dataset cifar10 --arch resnet18 --data-root DIR --epochs 200

It trains the model with a GrokTracker (or reuses --run-dir), then unlearns from both starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import grokplug
from grokplug.errors import GrokplugError, UsageError
from grokplug.vision import VisionData, make_forget_split

COLUMNS = ("steps_to_target", "forget_acc", "retain_acc", "test_acc", "mia_svc_efficacy", "mia_loss_lr")


def print_table(rows: list[dict]) -> None:
    print(f"\n{'method':<10} {'start':<5} {'step':>6}  " + "  ".join(f"{c:>16}" for c in COLUMNS))
    for row in rows:
        cells = []
        for c in COLUMNS:
            value = row[c]
            if c == "steps_to_target" and not row["steps_applicable"]:
                cells.append(f"{'n/a (one-shot)':>16}")
            elif value is None:
                cells.append(f"{'not reached':>16}")
            else:
                cells.append(f"{value:>16.3f}" if isinstance(value, float) else f"{value:>16}")
        print(f"{row['method']:<10} {row['start']:<5} {row['start_step']:>6}  " + "  ".join(cells))
    print("\nforget_acc is the paper's UA (lower = more forgotten); OPTML's UA = 1 - forget_acc.")
    print("mia_svc_efficacy: fraction of the forget set an SVC attack calls non-member (higher = better forgetting);")
    print("mia_loss_lr: loss-based attack accuracy, forget vs test (0.5 = indistinguishable).")


def compare_starts(source, methods, *, seed, target, data=None, model_factory=None, fallback="final") -> list[dict]:

    rows = []
    for method in methods:
        for start in ("pre", "grok"):
            model = model_factory() if model_factory else None
            result = grokplug.unlearn(
                method, model, data, source=source, start=start, seed=seed, target=target, fallback=fallback,
                forget_rate=None if data else 0.15,
            )
            row = grokplug.result_to_dict(result)
            row["start"] = start
            rows.append(row)
    return rows


def offline(args: argparse.Namespace) -> list[dict]:
    run_dir = Path(args.run_dir or "runs/vision/digits")
    if not grokplug.RunDir.exists(run_dir) or grokplug.RunDir(run_dir).status != "finished":
        print(f"training the digits preset into {run_dir} ...", file=sys.stderr)
        grokplug.train_preset("digits", run_dir, seed=0, overwrite=grokplug.RunDir.exists(run_dir))
    report = grokplug.detect_phases(run_dir)
    print(f"run {run_dir}: {report.label}, θ_pre = step {report.pre_step}, θ_grok = step {report.grok_step}")
    data = None
    if args.forget_rate != 0.15 or args.forget_class is not None:

        data = grokplug.run_data(run_dir, forget_rate=None if args.forget_class is not None else args.forget_rate,
                                      forget_classes=args.forget_class, seed=args.seed)
    return compare_starts(run_dir, args.methods, seed=args.seed, target=args.target, data=data)


# --- the torchvision path ----------------------------------------------------------------------------


def load_torchvision(name: str, root: Path, train: bool):
    """A torchvision dataset from disk only (never downloads); a clear error if it is missing."""
    import torchvision
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    try:
        if name == "cifar10":
            return torchvision.datasets.CIFAR10(str(root), train=train, download=False, transform=to_tensor)
        if name == "svhn":
            return torchvision.datasets.SVHN(str(root), split="train" if train else "test", download=False, transform=to_tensor)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
        expected = "cifar-10-batches-py/" if name == "cifar10" else "train_32x32.mat and test_32x32.mat"
        raise UsageError(
            f"{name} is not available under {root} (expected {expected}; torchvision said: {exc}). Download it "
            f"where there is internet, e.g. torchvision.datasets.{name.upper() if name == 'svhn' else 'CIFAR10'}"
            f"({str(root)!r}, download=True), and copy the folder here"
        ) from exc
    raise UsageError(f"unknown dataset {name!r}; choose cifar10 or svhn")


def as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=512)
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


class Normalized(torch.nn.Module):
    """Normalisation inside the model (as OPTML's models do), so every loader can stay ToTensor-only."""

    def __init__(self, net: torch.nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def make_resnet18(num_classes: int) -> torch.nn.Module:
    import torchvision

    return Normalized(torchvision.models.resnet18(weights=None, num_classes=num_classes),
                      [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])


@torch.no_grad()
def accuracy(model, x, y, batch=512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(-1) == y[i:i + batch]).sum()) for i in range(0, len(y), batch))
    model.train()
    return correct / len(y)


def train_tracked(run_dir: Path, train, test, num_classes: int, args) -> None:
    """Train the classifier with a GrokTracker (AdamW, weight decay; evaluation once per epoch)."""
    torch.manual_seed(args.seed)
    model = make_resnet18(num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    x, y = train
    n = len(y)
    eval_x, eval_y = x[: args.eval_size], y[: args.eval_size]
    config = {"dataset": args.dataset, "arch": args.arch, "lr": args.lr, "weight_decay": args.weight_decay,
              "epochs": args.epochs, "batch_size": args.batch_size}
    splits = {"train_indices": list(range(n)), "val_indices": list(range(len(test[1]))),
              "forget_eligible": list(range(n)), "num_classes": num_classes}
    with grokplug.GrokTracker(run_dir, config=config, seed=args.seed, splits=splits) as tracker:
        step = tracker.restore(model, optimizer)
        steps_per_epoch = (n + args.batch_size - 1) // args.batch_size
        for epoch in range(step // steps_per_epoch, args.epochs + 1):
            tracker.log_eval(step, train_acc=accuracy(model, eval_x, eval_y), val_acc=accuracy(model, *test),
                             model=model, optimizer=optimizer)
            if epoch == args.epochs:
                break
            order = torch.randperm(n)
            for i in range(0, n, args.batch_size):
                idx = order[i:i + args.batch_size]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                tracker.before_optimizer_step(model, step)
                optimizer.step()
                step += 1


def torchvision_protocol(args: argparse.Namespace) -> list[dict]:
    if args.arch != "resnet18":
        raise UsageError(f"unknown --arch {args.arch!r}; this example knows resnet18")
    if args.data_root is None:
        raise UsageError("--data-root is required with --dataset")
    train = as_tensors(load_torchvision(args.dataset, args.data_root, train=True))
    test = as_tensors(load_torchvision(args.dataset, args.data_root, train=False))
    num_classes = 10
    run_dir = Path(args.run_dir or f"runs/vision/{args.dataset}-{args.arch}")
    if not grokplug.RunDir.exists(run_dir) or grokplug.RunDir(run_dir).status != "finished":
        train_tracked(run_dir, train, test, num_classes, args)
    split = (make_forget_split(train[1], classes=args.forget_class, seed=args.seed) if args.forget_class is not None
             else make_forget_split(train[1], rate=args.forget_rate, seed=args.seed))
    from grokplug.vision import loaders_from_tensors

    test_x, test_y = test
    if split.kind == "class":
        keep = ~torch.isin(test_y, torch.tensor(split.classes))
        test_x, test_y = test_x[keep], test_y[keep]
    data: VisionData = loaders_from_tensors(*train, split, num_classes=num_classes, test=(test_x, test_y),
                                            batch_size=args.batch_size, seed=args.seed)
    report = grokplug.detect_phases(run_dir)
    print(f"run {run_dir}: {report.label}, θ_pre = step {report.pre_step}, θ_grok = step {report.grok_step}")
    return compare_starts(run_dir, args.methods, seed=args.seed, target=args.target, data=data,
                          model_factory=lambda: make_resnet18(num_classes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="ft,ga,rl,salun,scrub,ssd", type=lambda s: [m for m in s.split(",") if m])
    parser.add_argument("--forget-rate", type=float, default=0.15)
    parser.add_argument("--forget-class", type=int, action="append", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", default="frac:0.5", help="forget-acc target (default: half the start's forget acc)")
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--dataset", choices=("cifar10", "svhn"), default=None)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--eval-size", type=int, default=5000, help="train samples used for train accuracy")
    args = parser.parse_args(argv)
    try:
        rows = torchvision_protocol(args) if args.dataset else offline(args)
    except GrokplugError as exc:
        print(f"vision.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
