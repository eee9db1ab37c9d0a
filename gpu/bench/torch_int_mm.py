#!/usr/bin/env python3
"""Time torch._int_mm (INT8 x INT8 -> INT32 on the GPU's tensor cores) at N^3, the figure
gridlease-gpu's cuBLAS product is compared with, timed the way gpu_bench times ours: at least
0.3 s of warm-up (clocks ramp up from idle), then TRIALS trials of REPS calls each between two
CUDA events; the median trial counts, and the spread is reported. Writes JSON; exits 0 with
"skipped" where there is no PyTorch or no CUDA device.

usage: torch_int_mm.py [N] [OUT.json] [REPS] [TRIALS]
"""
import json
import statistics
import sys
import time


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    out = sys.argv[2] if len(sys.argv) > 2 else "target/bench/torch.json"
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    trials = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    report = {"n": n, "reps": reps, "trials": trials}
    try:
        import torch
    except ImportError as e:
        report["skipped"] = f"no PyTorch: {e}"
    else:
        if not torch.cuda.is_available():
            report["skipped"] = "PyTorch sees no CUDA device"
        else:
            dev = torch.device("cuda:0")
            g = torch.Generator(device=dev).manual_seed(42)
            a = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=dev, generator=g)
            # B column-major like gridlease's B^T rows: _int_mm wants b as (k, n); pass a
            # transposed view of a contiguous (n, k), which is the layout cuBLAS likes ("TN").
            bt = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=dev, generator=g)
            b = bt.t()
            warm = time.perf_counter()
            while True:
                torch._int_mm(a, b)
                torch.cuda.synchronize()
                if time.perf_counter() - warm >= 0.3:
                    break
            per_call = []
            for _ in range(trials):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(reps):
                    torch._int_mm(a, b)
                end.record()
                end.synchronize()
                per_call.append(start.elapsed_time(end) / 1e3 / reps)
            s = statistics.median(per_call)
            report.update(
                {
                    "device": torch.cuda.get_device_name(0),
                    "torch": torch.__version__,
                    "cuda": torch.version.cuda,
                    "seconds": s,
                    "seconds_min": min(per_call),
                    "seconds_max": max(per_call),
                    "tops": 2 * n**3 / s / 1e12,
                }
            )
    print(json.dumps(report))
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
