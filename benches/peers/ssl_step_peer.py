"""PyTorch CPU peer of benches/ssl_step.rs: one SimCLR step of the same small ResNet.

Network: 3x3 stem (stride 1, no max-pool), one basic block per stage, widths 16/32/64/128,
global average pool; projector 128 -> 512 (no bias) -> BN -> ReLU -> 128; NT-Xent T = 0.5;
SGD momentum 0.9. Prints `seconds_per_step <s>`.
Usage: /usr/bin/python3 ssl_step_peer.py <batch> <size> <steps> <threads>
"""
import sys, time
import torch, torch.nn as nn, torch.nn.functional as F

batch, size, steps, threads = (int(a) for a in sys.argv[1:5])
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
        self.stem = nn.Sequential(conv(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2), Block(64, 128, 2))
        self.proj = nn.Sequential(nn.Linear(128, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
    def forward(self, x):
        return self.proj(self.blocks(self.stem(x)).mean((2, 3)))

def nt_xent(a, b, t=0.5):
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = z.shape[0]
    logits = (z @ z.T / t).masked_fill(torch.eye(n, dtype=torch.bool), -1e9)
    target = (torch.arange(n) + n // 2) % n
    return F.cross_entropy(logits, target)

net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
xa, xb = torch.randn(batch, 1, size, size), torch.randn(batch, 1, size, size)

def step():
    loss = nt_xent(net(xa), net(xb))
    opt.zero_grad(); loss.backward(); opt.step()

step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(f"seconds_per_step {(time.perf_counter() - t0) / steps:.6f}")
