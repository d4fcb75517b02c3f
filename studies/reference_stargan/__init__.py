"""The reference PyTorch StarGAN's training iteration, timed on the shapes `scripts/benchmark.py --benchmarks=gan`
uses, for the side-by-side figures of docs/benchmarks.md. `run.py` runs in its own environment with PyTorch
(`make reference-venv`) and imports nothing of legan_tf."""
