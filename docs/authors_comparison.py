"""The authors' simulation (FFishy-git/MS-Attn-Simulation) on the official setting, for comparison.

Not part of the package and not run by the tests: it needs torch and a checkout of the authors'
code (AttentionNetwork.py, MultiheadAttention.py, data_generator.py, utils.py) on the path.
n = 3 tasks, d_x = 12, d_y = 3, L = 100, noise-free, plain SGD on B fresh prompts a step with their
elbow scheduler, from their structured start without the per-head Gaussian factor (so H = 1 runs).

    python docs/authors_comparison.py H B T_END SEED OUT.json     (README: H = 3 and 1, 2000, 4000, 0)
"""
import sys, time, json
import torch
from AttentionNetwork import AttentionNetwork
from data_generator import DataGenerator
from utils import AdaptiveLRScheduler

H = int(sys.argv[1]); B = int(sys.argv[2]); T_END = float(sys.argv[3]); seed = int(sys.argv[4])
OUT = sys.argv[5]
torch.manual_seed(seed)
dx, dy, L = 12, 3, 100
model = AttentionNetwork(dx=dx, dy=dy, L=L, num_heads=H, attention_type="softmax")
d = dx + dy
qk, lb, ub = model.qk_init, model.ov_init_lb, model.ov_init_ub
# the structured start of initialization() without the per-head randn factor (head h favours task h)
with torch.no_grad():
    model.q_proj.weight.copy_(torch.eye(d).repeat(H, 1) * qk)
    model.k_proj.weight.copy_(torch.eye(d).repeat(H, 1) * qk)
    model.v_proj.weight.zero_(); model.o_proj.weight.zero_()
    for h in range(H):
        tmp_y = torch.ones(dy) * lb
        tmp_y[h] = ub
        tmp = torch.cat([torch.zeros(dx), tmp_y])
        model.v_proj.weight[h * d:(h + 1) * d, :] = torch.diag(tmp)
        model.o_proj.weight[:, h * d + dx:(h + 1) * d] = torch.diag(tmp_y)
gen = DataGenerator(L=L, dx=dx, dy=dy, number_of_samples=B, noise_std=0.0)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.0)
sched = AdaptiveLRScheduler(opt, learning_rate=0.01, grad_elbow=0.1, max_learning_rate=0.5,
                            min_learning_rate=1e-4, method="elbow_decay")
loss_fn = torch.nn.MSELoss()
rows = []
start = time.time()
step = 0
while sched.cumulative_time < T_END:
    z, zq, yq = gen.generate_data()
    yhat, _ = model(query=zq, key=z, value=z)
    loss = loss_fn(yhat, yq)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if step % 20 == 0:
        w = model.extract_weights()
        rows.append({"t": sched.cumulative_time, "loss": loss.item(),
                     "omega": w["kq_effect_weights_diag_x_avg"].tolist(),
                     "mu": w["ov_effect_weights_diag_y"].tolist()})
    step += 1
w = model.extract_weights()
rows.append({"t": sched.cumulative_time, "loss": loss.item(),
             "omega": w["kq_effect_weights_diag_x_avg"].tolist(),
             "mu": w["ov_effect_weights_diag_y"].tolist()})
json.dump({"H": H, "batch": B, "seed": seed, "steps": step, "seconds": time.time() - start,
           "rows": rows}, open(OUT, "w"))
print("done", H, B, step, time.time() - start)
