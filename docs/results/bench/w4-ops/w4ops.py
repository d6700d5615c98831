import torch, time, sys
torch.set_num_threads(int(sys.argv[1]))
N,H=64,16
def t(name,f,fl):
    for _ in range(3): f()
    reps=20; s=time.perf_counter()
    for _ in range(reps): f()
    ms=(time.perf_counter()-s)/reps*1e3
    print(f"{name:28s} {ms:.2f} ms  {fl/ms/1e6:.0f} GFLOP/s")
for ci,co in [(64,16),(64,64)]:
    x=torch.randn(N,ci,H,H); w=torch.randn(co,ci,3,3); dy=torch.randn(N,co,H,H)
    fl=2*N*H*H*9*ci*co
    t(f"fwd {ci}->{co}", lambda: torch.nn.functional.conv2d(x,w,padding=1), fl)
    t(f"dx {ci}->{co}", lambda: torch.nn.grad.conv2d_input(x.shape,w,dy,padding=1), fl)
    t(f"dw {ci}->{co}", lambda: torch.nn.grad.conv2d_weight(x,w.shape,dy,padding=1), fl)
