#!/usr/bin/env python3
"""Fetches the headers that framework/backend/cuda/nccl_communicator.cpp needs -- NCCL's nccl.h and the
CUDA runtime's headers -- from NVIDIA's PyPI wheels, so that a machine without the CUDA toolkit (CI)
can compile it (tests/compile_nccl.sh). Headers only: nothing is installed, no library is kept.

    scripts/fetch_cuda_headers.py [DEST]     (default: ~/.cache/kerascpp/cuda-headers)

Standard library only (no pip). Each wheel is checked against PyPI's sha256. Does nothing when DEST
already holds this set. The NCCL wheel is about 207 MB (its libnccl.so), the others 5 MB together.
"""
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import urllib.request
import zipfile

# Pinned: CUDA 13.0's runtime, C runtime (crt/) and CCCL (nv/target) headers, and NCCL for CUDA 13.
WHEELS = [
    ("nvidia-cuda-runtime", "13.0.96"),
    ("nvidia-cuda-crt", "13.0.88"),
    ("nvidia-cuda-cccl", "13.0.85"),
    ("nvidia-nccl-cu13", "2.32.6"),
]


def wanted(member):
    """The headers kept: every include/ file except CCCL's libraries (cub, thrust, libcu++), of which
    only nv/ (nv/target, which cuda_fp16.h includes) is needed."""
    parts = member.split("/")
    if "include" not in parts or member.endswith("/"):
        return False
    below = parts[parts.index("include") + 1:]
    return below[0] != "cccl" or (len(below) > 1 and below[1] == "nv")


def wheel_for(name, version):
    """The wheel's URL, sha256 and file name, from PyPI's simple index (its JSON form, PEP 691)."""
    request = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    prefix = name.replace("-", "_") + "-" + version + "-"
    machine = platform.machine()
    for f in files:
        if f["filename"].startswith(prefix) and f["filename"].endswith(".whl") and machine in f["filename"]:
            return f["url"], f["hashes"]["sha256"], f["filename"]
    sys.exit(f"fetch_cuda_headers: {name} {version} has no wheel for {machine}")


def fetch(name, version, dest, scratch):
    url, sha256, filename = wheel_for(name, version)
    path = os.path.join(scratch, filename)
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=600) as response, open(path, "wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        sys.exit(f"fetch_cuda_headers: {filename}: sha256 {digest.hexdigest()}, PyPI says {sha256}")
    with zipfile.ZipFile(path) as wheel:
        for member in wheel.namelist():
            if wanted(member):
                wheel.extract(member, dest)
    os.remove(path)


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/kerascpp/cuda-headers")
    stamp = os.path.join(dest, "WHEELS")
    want = "".join(f"{name}=={version}\n" for name, version in WHEELS)
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    with tempfile.TemporaryDirectory() as scratch:
        for name, version in WHEELS:
            print(f"fetch_cuda_headers: {name}=={version}", flush=True)
            fetch(name, version, dest, scratch)
    with open(stamp, "w") as out:
        out.write(want)   # last: an interrupted fetch is redone


if __name__ == "__main__":
    main()
