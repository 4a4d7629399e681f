"""Turns rustc's bpfel-unknown-none spec (stdin) into the SBPF v3 target the build uses (stdout).

`os = zkvm` gives std a small platform layer that needs no OS; atomics are lowered to plain
loads and stores by `-C passes=lower-atomic` (the VM is single-threaded), so compare-and-swap is
declared available down to byte width; panics abort because SBF has no unwinding.
"""
import json
import sys

spec = json.load(sys.stdin)
spec.update({
    "os": "zkvm",
    "atomic-cas": True,
    "min-atomic-width": 8,
    "panic-strategy": "abort",
})
spec.setdefault("metadata", {})["std"] = True
json.dump(spec, sys.stdout, indent=2, sort_keys=True)
print()
