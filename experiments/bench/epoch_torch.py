# PyTorch peer of experiments/bench/epoch-throughput.ts: one epoch of the same model, loss,
# optimizer and batch on the same images, on a given number of threads.
#   python3 epoch_torch.py <images.u8> <labels.u8> <count> <threads> <model> -> {"seconds": s, "cpu": s}
# (cpu: time.process_time(), all threads of the process.)
# images.u8: count*784 raw MNIST bytes; normalised as Tessera does ((x/255 - 0.5) / 0.5).
# Prints {"missing": "..."} (exit 0) when torch is not installed, so the caller can skip it.
import json
import sys
import time

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # optional peer
    print(json.dumps({"missing": str(e)}))
    sys.exit(0)

images_path, labels_path, count, threads, model_name = sys.argv[1:6]
count = int(count)
torch.set_num_threads(int(threads))
torch.manual_seed(1)
x = np.fromfile(images_path, dtype=np.uint8, count=count * 784).astype(np.float32)
x = torch.from_numpy(((x / 255.0 - 0.5) / 0.5).reshape(count, 1, 28, 28))
y = torch.from_numpy(np.fromfile(labels_path, dtype=np.uint8, count=count).astype(np.int64))

if model_name == "lenet300100":
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )
elif model_name == "lenet5":  # Caffe's LeNet as in packages/nn/src/models.ts (no ReLU after convs)
    model = nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10),
    )
elif model_name == "small-cnn":  # packages/nn/src/models.ts smallCnn(): 3x3 convs, padding 1
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )
else:
    raise SystemExit(f"epoch_torch.py: unknown model {model_name}")
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
batch = 128
order = torch.randperm(count)


def step(idx):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x[idx]), y[idx])
    loss.backward()
    opt.step()


step(order[:batch])  # warm-up
t0 = time.perf_counter()
c0 = time.process_time()
for s in range(0, count, batch):
    step(order[s : s + batch])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "cpu": time.process_time() - c0, "torch": torch.__version__}))
