#!/usr/bin/env python3
"""Time torch._int_mm (INT8 x INT8 -> INT32 on the GPU's tensor cores) at N^3, the figure
gridlease-gpu's cuBLAS product is compared with. Writes JSON; exits 0 with "skipped" where there
is no PyTorch or no CUDA device.

usage: torch_int_mm.py [N] [OUT.json] [REPS]
"""
import json
import sys
import time


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    out = sys.argv[2] if len(sys.argv) > 2 else "target/bench/torch.json"
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    report = {"n": n}
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
            for _ in range(2):
                torch._int_mm(a, b)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(reps):
                torch._int_mm(a, b)
            torch.cuda.synchronize()
            s = (time.perf_counter() - t) / reps
            report.update(
                {
                    "device": torch.cuda.get_device_name(0),
                    "torch": torch.__version__,
                    "cuda": torch.version.cuda,
                    "seconds": s,
                    "tops": 2 * n**3 / s / 1e12,
                }
            )
    print(json.dumps(report))
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
