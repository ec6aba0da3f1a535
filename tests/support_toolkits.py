"""Stand-in checkouts of the toolkits the docs wrap, for the doc-snippet test.

Each has the real toolkit's file layout, import structure and function/class *shapes* (signatures,
batch formats, in-place behaviour, the known upstream breakage), written here from those shapes; no
toolkit code is copied. They are small but real: the methods train or edit the model for real.

* ``open-unlearning/src``: ``trainer`` package, ``GradDiff``/``NPO`` with d3d7cf9's old ``compute_loss``
  signature and ``FinetuneTrainer(evaluators=None, template_args=None, *args, **kwargs)``;
* ``Unlearn-Saliency/Classification``: flat scripts (``utils.py``), ``unlearn.get_unlearn_method`` with
  ``@iterative_unlearn`` methods RL/GA/FT calling ``.cuda()``, and main's broken ``trainer/__init__.py``
  (imports ``train_with_rewind``, which ``trainer/train.py`` lacks);
* ``selective-synaptic-dampening/src``: ``ssd.py`` importing ``wandb`` and ``seaborn`` (unused) and the
  ``ParameterPerturber`` class over ``(x, _, y)`` batches; a generic ``utils.py``;
* ``SCRUB``: ``thirdparty/repdistiller/helper/loops.py::train_distill`` and ``distiller_zoo.DistillKL``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

OU = {
    "src/trainer/__init__.py": "",
    "src/trainer/base.py": """\
        from transformers import Trainer

        class FinetuneTrainer(Trainer):
            def __init__(self, evaluators=None, template_args=None, *args, **kwargs):
                self.evaluators = evaluators
                self.template_args = template_args
                super().__init__(*args, **kwargs)
        """,
    "src/trainer/unlearn/__init__.py": "",
    "src/trainer/unlearn/base.py": """\
        from trainer.base import FinetuneTrainer

        class UnlearnTrainer(FinetuneTrainer):
            pass
        """,
    "src/trainer/unlearn/grad_diff.py": """\
        import copy

        from trainer.unlearn.base import UnlearnTrainer

        def _plain(batch):
            return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}

        class GradDiff(UnlearnTrainer):
            def __init__(self, gamma=1.0, alpha=1.0, retain_loss_type="NLL", *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.gamma, self.alpha, self.retain_loss_type = gamma, alpha, retain_loss_type
                self.ref_model = None

            def _prepare_ref_model(self, model):
                ref = copy.deepcopy(model).to(self.accelerator.device)
                ref.eval()
                return ref

            def compute_retain_loss(self, model, retain_inputs):
                return model(**_plain(retain_inputs)).loss

            def compute_loss(self, model, inputs, return_outputs=False):
                forget_outputs = model(**_plain(inputs["forget"]))
                loss = -self.gamma * forget_outputs.loss + self.alpha * self.compute_retain_loss(model, inputs["retain"])
                return (loss, forget_outputs) if return_outputs else loss
        """,
    "src/trainer/unlearn/npo.py": """\
        import torch.nn.functional as F

        from trainer.unlearn.grad_diff import GradDiff, _plain

        def _sequence_nll(model, batch):
            outputs = model(**_plain(batch))
            logits, labels = outputs.logits[:, :-1], batch["labels"][:, 1:]
            nll = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
            return nll.sum(-1), outputs

        class NPO(GradDiff):
            def __init__(self, beta=1.0, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.beta = beta
                if self.ref_model is None:
                    self.ref_model = self._prepare_ref_model(self.model)

            def compute_loss(self, model, inputs, return_outputs=False):
                lose, forget_outputs = _sequence_nll(model, inputs["forget"])
                ref_lose, _ = _sequence_nll(self.ref_model, inputs["forget"])
                forget_loss = -2 / self.beta * F.logsigmoid(self.beta * (lose - ref_lose.detach())).mean()
                loss = self.gamma * forget_loss + self.alpha * self.compute_retain_loss(model, inputs["retain"])
                return (loss, forget_outputs) if return_outputs else loss
        """,
}

OPTML = {
    "utils.py": "def seed_offset():\n    return 0\n",
    "trainer/__init__.py": "from .train import get_optimizer_and_scheduler, train, train_with_rewind\n",
    "trainer/train.py": """\
        import torch
        import utils

        def get_optimizer_and_scheduler(model, args):
            optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum)
            return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[10**6])

        def train(train_loader, model, criterion, optimizer, epoch, args, mask=None, l1=False):
            return utils.seed_offset()
        """,
    "unlearn/__init__.py": """\
        from .FT import FT
        from .GA import GA
        from .retrain import retrain
        from .RL import RL

        def get_unlearn_method(name):
            if name == "RL":
                return RL
            elif name == "GA":
                return GA
            elif name == "FT":
                return FT
            elif name == "retrain":
                return retrain
            raise NotImplementedError(f"Unlearn method {name} not implemented!")
        """,
    "unlearn/impl.py": """\
        import torch

        def iterative_unlearn(unlearn_iter_func):
            def _wrapped(data_loaders, model, criterion, args, mask=None):
                decreasing_lr = list(map(int, args.decreasing_lr.split(",")))
                optimizer = torch.optim.SGD(model.parameters(), args.unlearn_lr, momentum=args.momentum,
                                            weight_decay=args.weight_decay)
                scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=decreasing_lr, gamma=0.1)
                for epoch in range(0, args.unlearn_epochs):
                    unlearn_iter_func(data_loaders, model, criterion, optimizer, epoch, args, mask)
                    scheduler.step()
            return _wrapped
        """,
    "unlearn/RL.py": """\
        import torch

        from .impl import iterative_unlearn

        def _masked(model, mask):
            if mask:
                for name, param in model.named_parameters():
                    if param.grad is not None:
                        param.grad *= mask[name]

        @iterative_unlearn
        def RL(data_loaders, model, criterion, optimizer, epoch, args, mask=None):
            model.train()
            if args.dataset in ("cifar10", "svhn"):
                for image, target in data_loaders["forget"]:
                    image = image.cuda()
                    target = torch.randint(0, args.num_classes, target.shape).cuda()
                    loss = criterion(model(image), target)
                    optimizer.zero_grad()
                    loss.backward()
                    _masked(model, mask)
                    optimizer.step()
                for image, target in data_loaders["retain"]:
                    image, target = image.cuda(), target.cuda()
                    loss = criterion(model(image), target)
                    optimizer.zero_grad()
                    loss.backward()
                    _masked(model, mask)
                    optimizer.step()
        """,
    "unlearn/GA.py": """\
        from .impl import iterative_unlearn

        @iterative_unlearn
        def GA(data_loaders, model, criterion, optimizer, epoch, args, mask=None):
            model.train()
            for image, target in data_loaders["forget"]:
                loss = -criterion(model(image.cuda()), target.cuda())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
    "unlearn/FT.py": """\
        from .impl import iterative_unlearn

        @iterative_unlearn
        def FT(data_loaders, model, criterion, optimizer, epoch, args, mask=None):
            model.train()
            for image, target in data_loaders["retain"]:
                loss = criterion(model(image.cuda()), target.cuda())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """,
    "unlearn/retrain.py": """\
        from trainer import train

        def retrain(data_loaders, model, criterion, args, mask=None):
            return train(data_loaders["retain"], model, criterion, None, 0, args)
        """,
}

SSD = {
    "src/utils.py": "def accuracy_of(outputs, labels):\n    return (outputs.argmax(1) == labels).float().mean()\n",
    "src/ssd.py": """\
        from typing import Dict

        import seaborn as sns
        import torch
        import torch.nn as nn
        import wandb

        class ParameterPerturber:
            def __init__(self, model, opt, device="cpu", parameters=None):
                self.model, self.opt, self.device = model, opt, device
                print(parameters)
                self.lower_bound = parameters["lower_bound"]
                self.exponent = parameters["exponent"]
                self.dampening_constant = parameters["dampening_constant"]
                self.selection_weighting = parameters["selection_weighting"]

            def calc_importance(self, dataloader) -> Dict[str, torch.Tensor]:
                criterion = nn.CrossEntropyLoss()
                importances = {k: torch.zeros_like(p) for k, p in self.model.named_parameters()}
                for batch in dataloader:
                    x, _, y = batch
                    x, y = x.to(self.device), y.to(self.device)
                    self.opt.zero_grad()
                    criterion(self.model(x), y).backward()
                    for k, p in self.model.named_parameters():
                        if p.grad is not None:
                            importances[k] += p.grad.detach().clone().pow(2)
                return {k: v / float(len(dataloader)) for k, v in importances.items()}

            def modify_weight(self, original_importance, forget_importance) -> None:
                with torch.no_grad():
                    for n, p in self.model.named_parameters():
                        oimp, fimp = original_importance[n], forget_importance[n]
                        locations = torch.where(fimp > oimp.mul(self.selection_weighting))
                        weight = oimp.mul(self.dampening_constant).div(fimp).pow(self.exponent)
                        update = weight[locations]
                        update[torch.where(update > self.lower_bound)] = self.lower_bound
                        p[locations] = p[locations].mul(update)
        """,
}

SCRUB = {
    "datasets.py": "LACUNA = 'stand-in'\n",
    "thirdparty/repdistiller/helper/__init__.py": "",
    "thirdparty/repdistiller/helper/util.py": """\
        class AverageMeter:
            def __init__(self):
                self.sum, self.count = 0.0, 0

            def update(self, value, n=1):
                self.sum += float(value) * n
                self.count += n

            @property
            def avg(self):
                return self.sum / max(self.count, 1)
        """,
    "thirdparty/repdistiller/helper/loops.py": """\
        import torch

        from .util import AverageMeter

        def train_distill(epoch, train_loader, module_list, swa_model, criterion_list, optimizer, opt, split,
                          quiet=False):
            for module in module_list:
                module.train()
            module_list[-1].eval()
            criterion_cls, criterion_div = criterion_list[0], criterion_list[1]
            model_s, model_t = module_list[0], module_list[-1]
            losses = AverageMeter()
            for idx, (input, target) in enumerate(train_loader):
                input = input.float()
                if torch.cuda.is_available():
                    input, target = input.cuda(), target.cuda()
                logit_s = model_s(input)
                with torch.no_grad():
                    logit_t = model_t(input)
                loss_cls = criterion_cls(logit_s, target)
                loss_div = criterion_div(logit_s, logit_t)
                loss_kd = 0
                if split == "minimize":
                    loss = opt.gamma * loss_cls + opt.alpha * loss_div + opt.beta * loss_kd
                elif split == "maximize":
                    loss = -loss_div
                losses.update(loss.item(), input.size(0))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            return losses.avg
        """,
    "thirdparty/repdistiller/distiller_zoo/__init__.py": "from .KD import DistillKL\n",
    "thirdparty/repdistiller/distiller_zoo/KD.py": """\
        import torch.nn as nn
        import torch.nn.functional as F

        class DistillKL(nn.Module):
            def __init__(self, T):
                super().__init__()
                self.T = T

            def forward(self, y_s, y_t):
                p_s = F.log_softmax(y_s / self.T, dim=1)
                p_t = F.softmax(y_t / self.T, dim=1)
                return F.kl_div(p_s, p_t, reduction="sum") * (self.T**2) / y_s.shape[0]
        """,
}

CHECKOUTS = {
    "open-unlearning": OU,
    "Unlearn-Saliency/Classification": OPTML,
    "selective-synaptic-dampening": SSD,
    "SCRUB": SCRUB,
}


def write_checkouts(root: Path) -> Path:
    """Write every stand-in checkout under ``root`` (the layout the docs' paths assume)."""
    for checkout, files in CHECKOUTS.items():
        for name, text in files.items():
            path = root / checkout / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
    return root
