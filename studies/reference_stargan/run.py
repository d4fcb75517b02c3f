#!/usr/bin/env python
"""The reference StarGAN's training iteration, timed on the shapes scripts/benchmark.py --benchmarks=gan uses.

Outside the package on purpose: it runs in its own virtual environment with PyTorch (never imported by
legan_tf) and imports the networks from a checkout of the reference code, which this project does not
ship (https://github.com/yunjey/stargan, MIT; its model.py):

  git clone https://github.com/yunjey/stargan /tmp/stargan-reference
  make reference-venv                                   # .venv-reference: torch 2.13 (CPU), numpy
  .venv-reference/bin/python studies/reference_stargan/run.py --stargan_repo=/tmp/stargan-reference \\
      --sizes=64,128 --batch=8 --widths=64:6:6

The iteration is the reference's solver.py recipe for one domain attribute (RaFD's, as FER2013's):
D on real faces (WGAN critic, softmax classification), on G's translations, and the gradient penalty
on interpolates (create_graph, so a double backward); every n_critic-th iteration G: translation to
the target label, D's critic and classification on it, and the cycle back to the source label.
Adam(1e-4, 0.5, 0.999) for both. Timed as the project's gan benchmark: the median of --repeats runs of
two whole D/G cycles (2 * n_critic iterations), as images per D iteration per second.
"""

import argparse
import importlib.util
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_reference_model(repo):
    path = os.path.join(repo, "model.py")
    if not os.path.isfile(path):
        raise SystemExit(f"error: --stargan_repo={repo} holds no model.py (clone https://github.com/yunjey/stargan)")
    spec = importlib.util.spec_from_file_location("reference_stargan_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gradient_penalty(critic_out, inputs):
    gradients = torch.autograd.grad(outputs=critic_out, inputs=inputs, grad_outputs=torch.ones_like(critic_out),
                                    retain_graph=True, create_graph=True, only_inputs=True)[0]
    norms = torch.sqrt(torch.sum(gradients.view(gradients.size(0), -1) ** 2, dim=1))
    return torch.mean((norms - 1) ** 2)


def make_iteration(model, size, batch, filters, blocks, downsamples, classes=7, n_critic=5,
                   lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, device="cpu"):
    generator = model.Generator(filters, classes, blocks).to(device)
    discriminator = model.Discriminator(size, filters, classes, downsamples).to(device)
    g_optimizer = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), 1e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)).to(device)
    source = torch.from_numpy(rng.integers(0, classes, batch)).to(device)
    target = (source + torch.from_numpy(rng.integers(1, classes, batch)).to(device)) % classes
    source_onehot, target_onehot = F.one_hot(source, classes).float(), F.one_hot(target, classes).float()

    def iteration(number):
        out_src, out_cls = discriminator(images)
        d_loss = -torch.mean(out_src) + lambda_cls * F.cross_entropy(out_cls, source)
        fake = generator(images, target_onehot)
        out_src, _ = discriminator(fake.detach())
        d_loss = d_loss + torch.mean(out_src)
        alpha = torch.rand(batch, 1, 1, 1, device=device)
        mixed = (alpha * images + (1 - alpha) * fake.detach()).requires_grad_(True)
        out_src, _ = discriminator(mixed)
        d_loss = d_loss + lambda_gp * gradient_penalty(out_src, mixed)
        d_optimizer.zero_grad()
        g_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()
        if number % n_critic == 0:
            fake = generator(images, target_onehot)
            out_src, out_cls = discriminator(fake)
            rebuilt = generator(fake, source_onehot)
            g_loss = (-torch.mean(out_src) + lambda_cls * F.cross_entropy(out_cls, target)
                      + lambda_rec * torch.mean(torch.abs(images - rebuilt)))
            d_optimizer.zero_grad()
            g_optimizer.zero_grad()
            g_loss.backward()
            g_optimizer.step()
        return float(d_loss.detach())

    return iteration


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stargan_repo", required=True, help="a checkout of yunjey/stargan (its model.py is used)")
    parser.add_argument("--sizes", default="64,128", help="image sizes, comma-separated")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--widths", default="64:6:6",
                        help="G/D filters:G residual blocks:D downsamplings, comma-separated")
    parser.add_argument("--n_critic", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", default="cpu",
                        help="torch device: cpu or cuda (each iteration returns D's loss as a Python float, as the "
                        "reference's logging does, so the GPU is synchronised every iteration)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"error: --device={args.device}: torch {torch.__version__} sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_reference_model(args.stargan_repo)
    torch.manual_seed(0)
    where = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
             else f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"# reference StarGAN (yunjey/stargan model.py), torch {torch.__version__}, {where}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| setting | images/s (median) | range |")
    print("|---|---|---|")
    for width in args.widths.split(","):
        filters, blocks, downsamples = (int(part) for part in width.split(":"))
        for size in (int(part) for part in args.sizes.split(",")):
            iteration = make_iteration(model, size, args.batch, filters, blocks, downsamples, n_critic=args.n_critic,
                                       device=args.device)
            for number in range(1, args.n_critic + 1):  # warm-up: one whole D/G cycle
                iteration(number)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for number in range(1, 2 * args.n_critic + 1):
                    iteration(number)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()  # the last G update too
                times.append(time.perf_counter() - start)
            rate = lambda seconds: 2 * args.n_critic * args.batch / seconds  # noqa: E731
            print(f"| reference StarGAN train (torch) {size} px, batch {args.batch}, {filters} filters, "
                  f"{blocks} blocks, n_critic {args.n_critic} | {rate(statistics.median(times)):.2f} | "
                  f"{rate(max(times)):.2f}..{rate(min(times)):.2f} |", flush=True)


if __name__ == "__main__":
    main()
