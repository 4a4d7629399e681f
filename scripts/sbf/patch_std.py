"""Patches a copy of std's sources so std builds for target_arch = "bpf" (argv[1] = library/).

1. sys/alloc: bpf needs a MIN_ALIGN (16, like other 64-bit targets), else std refuses to build.
2. hash/random: RandomState::new caches keys in a thread_local, a writable static that SBPF
   rejects at link time ("relocation target is not rodata or text"). On bpf use fixed keys:
   on-chain code is deterministic anyway and has no entropy source.
Idempotent: a patched file is left as it is.
"""
import pathlib
import sys

library = pathlib.Path(sys.argv[1])


def patch(relative, old, new, marker):
    path = library / relative
    text = path.read_text()
    if marker in text:
        return
    if old not in text:
        sys.exit(f"patch_std: pattern not found in {relative}; the toolchain's std changed")
    path.write_text(text.replace(old, new, 1))


patch(
    "std/src/sys/alloc/mod.rs",
    '    target_arch = "wasm64",\n)) {\n    16',
    '    target_arch = "wasm64",\n    target_arch = "bpf",\n)) {\n    16',
    'target_arch = "bpf"',
)
patch(
    "std/src/hash/random.rs",
    "    pub fn new() -> RandomState {\n",
    "    pub fn new() -> RandomState {\n"
    "        #[cfg(target_arch = \"bpf\")]\n"
    "        {\n"
    "            return RandomState { k0: 0x736f_6d65_7073_6575, k1: 0x646f_7261_6e64_6f6d };\n"
    "        }\n",
    "k0: 0x736f_6d65_7073_6575",
)
