"""PyTorch CPU peer of benches/ssl_step.rs: one SimCLR step of the same ResNet.

Network (`small`): 3x3 stem (stride 1, no max-pool), one basic block per stage, widths
16/32/64/128; (`resnet18`): the same stem, two basic blocks per stage, widths 64/128/256/512;
global average pool; projector feat -> 512 (no bias) -> BN -> ReLU -> 128; NT-Xent T = 0.5;
SGD momentum 0.9. Prints `seconds_per_step <median s> min <s>` and, on `cuda`,
`peak_mib <torch.cuda.max_memory_allocated in MiB>`.
Usage: python3 ssl_step_peer.py <batch> <size> <steps> <threads> [small|resnet18] [channels] [cpu|cuda] [fp32|bf16]
Every step reads its loss back (`.item()`), as the Rust step does, so on `cuda` the time is the
GPU's work and not only its queueing. `bf16`: forward and loss under
`torch.autocast(device, dtype=torch.bfloat16)` (mixed precision; weights and optimiser in fp32).
"""
import sys, time
import torch, torch.nn as nn, torch.nn.functional as F

batch, size, steps, threads = (int(a) for a in sys.argv[1:5])
arch = sys.argv[5] if len(sys.argv) > 5 else "small"
channels = int(sys.argv[6]) if len(sys.argv) > 6 else 1
device = torch.device(sys.argv[7] if len(sys.argv) > 7 else "cpu")
precision = sys.argv[8] if len(sys.argv) > 8 else "fp32"
assert precision in ("fp32", "bf16"), precision
widths, layers = {"small": ([16, 32, 64, 128], 1), "resnet18": ([64, 128, 256, 512], 2)}[arch]
torch.set_num_threads(threads)
torch.manual_seed(0)

def conv(i, o, k, s, p): return nn.Conv2d(i, o, k, s, p, bias=False)

class Block(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.c1, self.b1 = conv(i, o, 3, s, 1), nn.BatchNorm2d(o)
        self.c2, self.b2 = conv(o, o, 3, 1, 1), nn.BatchNorm2d(o)
        self.sc = nn.Sequential(conv(i, o, 1, s, 0), nn.BatchNorm2d(o)) if s != 1 or i != o else nn.Identity()
    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(h)) + self.sc(x))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        w = widths
        self.stem = nn.Sequential(conv(channels, w[0], 3, 1, 1), nn.BatchNorm2d(w[0]), nn.ReLU())
        blocks, i = [], w[0]
        for stage, o in enumerate(w):
            for b in range(layers):
                blocks.append(Block(i, o, 2 if stage > 0 and b == 0 else 1))
                i = o
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Sequential(nn.Linear(w[3], 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
    def forward(self, x):
        return self.proj(self.blocks(self.stem(x)).mean((2, 3)))

def nt_xent(a, b, t=0.5):
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = z.shape[0]
    logits = (z @ z.T / t).masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), -1e9)
    target = (torch.arange(n, device=z.device) + n // 2) % n
    return F.cross_entropy(logits, target)

net = Net().to(device)
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
xa = torch.randn(batch, channels, size, size).to(device)
xb = torch.randn(batch, channels, size, size).to(device)

def step():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = nt_xent(net(xa), net(xb))
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()

step()
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
line = f"seconds_per_step {times[len(times) // 2]:.6f} min {times[0]:.6f}"
if device.type == "cuda":
    line += f" peak_mib {torch.cuda.max_memory_allocated() / 2**20:.0f}"
print(line)
