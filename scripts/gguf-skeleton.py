#!/usr/bin/env python3
"""Split a GGUF file into its header (metadata, tokenizer, tensor table) and the size of the
whole file, so that a copy with the same structure and zeroed weights can be rebuilt where the
weights cannot travel (the GPU machine takes 64 MiB per call):

    scripts/gguf-skeleton.py models/x.gguf out/x        # writes out/x.head and out/x.size
    cat out/x.head > x.gguf && truncate -s "$(cat out/x.size)" x.gguf

The rebuilt file loads in llama.cpp and runs at the real model's speed (every operation has
the same shapes and types); its answers are meaningless, so it serves throughput figures only.
"""
import os
import struct
import sys

SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def main(src: str, out: str) -> None:
    with open(src, "rb") as f:
        data = f.read(64 << 20)
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    def skip(kind: int) -> object:
        nonlocal pos
        if kind == 8:
            return string()
        if kind == 9:
            inner, n = take("I"), take("Q")
            for _ in range(n):
                skip(inner)
            return None
        if kind == 4:
            return take("I")
        pos += SCALAR[kind]
        return None

    if data[:4] != b"GGUF":
        sys.exit(f"{src}: not a GGUF file")
    pos = 4
    version, tensors, kvs = take("I"), take("Q"), take("Q")
    alignment = 32
    for _ in range(kvs):
        key, kind = string(), take("I")
        value = skip(kind)
        if key == "general.alignment" and isinstance(value, int):
            alignment = value
    for _ in range(tensors):
        string()
        dims = take("I")
        pos += 8 * dims + 4 + 8
    offset = (pos + alignment - 1) // alignment * alignment
    with open(out + ".head", "wb") as f:
        f.write(data[:offset])
    with open(out + ".size", "w") as f:
        f.write(str(os.path.getsize(src)))
    print(f"{src}: GGUF v{version}, {tensors} tensors, header {offset} bytes of {os.path.getsize(src)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gguf-skeleton.py MODEL.gguf OUT_PREFIX")
    main(sys.argv[1], sys.argv[2])
