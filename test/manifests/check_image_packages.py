#!/usr/bin/python3
"""The container image's runtime package list must be exactly what the binary
needs: `ldd exit-reconciler` → the Debian package owning each library
(`dpkg -S`) must equal the runtime stage's `apt-get install` list in the
Dockerfile, apart from ca-certificates. No Docker daemon is needed.

Also checks the Dockerfile's shape: a debian:bookworm build stage that runs
scripts/build.sh and ctest, a debian:bookworm-slim runtime stage, a numeric
USER 65532:65532 and the exit-reconciler entrypoint.

Exit codes: 0 pass, 1 failure, 77 skipped (the build produced no binary).
"""
import argparse
import os
import re
import subprocess
import sys

# Packages the image needs for reasons other than linking.
NON_LIBRARY = {"ca-certificates"}


def owner_package(path):
    """Debian package that owns a library path; tries the usrmerge aliases."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/") or p.startswith("/lib64/"):
            candidates.append("/usr" + p)
    for p in candidates:
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            # "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3"
            return out.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def linked_packages(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    pkgs, unresolved = {}, []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            unresolved.append(line)
            continue
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"^(/\S+)", line)
        if not m:
            continue  # linux-vdso: provided by the kernel
        pkg = owner_package(m.group(1))
        if pkg is None:
            unresolved.append(line)
        else:
            pkgs.setdefault(pkg, []).append(os.path.basename(m.group(1)))
    return pkgs, unresolved


def dockerfile_stages(text):
    # Join continuation lines, drop comments.
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages = []
    for line in joined.splitlines():
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ")
        if instr.upper() == "FROM":
            stages.append({"from": rest.strip(), "instr": []})
        elif stages:
            stages[-1]["instr"].append((instr.upper(), rest.strip()))
    return stages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--binary", required=True)
    a = ap.parse_args()
    errors = []
    with open(os.path.join(a.root, "Dockerfile")) as f:
        stages = dockerfile_stages(f.read())
    if len(stages) != 2:
        print(f"FAIL: expected a two-stage Dockerfile, found {len(stages)} stages")
        return 1
    build, runtime = stages
    if not build["from"].startswith("debian:bookworm ") and build["from"] != "debian:bookworm":
        errors.append(f"build stage must be FROM debian:bookworm, is {build['from']!r}")
    build_runs = " ".join(r for i, r in build["instr"] if i == "RUN")
    for need in ("scripts/build.sh", "ctest "):
        if need not in build_runs:
            errors.append(f"build stage does not run {need.strip()} (the CI build)")
    if runtime["from"] != "debian:bookworm-slim":
        errors.append(f"runtime stage must be FROM debian:bookworm-slim, is {runtime['from']!r}")
    users = [r for i, r in runtime["instr"] if i == "USER"]
    if users != ["65532:65532"]:
        errors.append(f"runtime USER must be the numeric 65532:65532, is {users}")
    entry = [r for i, r in runtime["instr"] if i == "ENTRYPOINT"]
    if len(entry) != 1 or not re.search(r'"[^"]*/?exit-reconciler"', entry[0]):
        errors.append(f"ENTRYPOINT must be exit-reconciler, is {entry}")
    installs = [r for i, r in runtime["instr"] if i == "RUN" and "apt-get install" in r]
    if len(installs) != 1:
        errors.append("runtime stage needs exactly one apt-get install")
        listed = set()
    else:
        after = installs[0].split("apt-get install", 1)[1].split("&&", 1)[0]
        listed = {w for w in after.split() if not w.startswith("-")}

    if not os.path.exists(a.binary):
        for e in errors:
            print("FAIL:", e)
        print(f"SKIPPED: no controller binary at {a.binary}: the runtime package list was not "
              "compared with ldd (the Dockerfile shape was checked)")
        return 1 if errors else 77
    pkgs, unresolved = linked_packages(a.binary)
    for u in unresolved:
        errors.append(f"ldd: library without a Debian package: {u}")
    need = set(pkgs)
    for p in sorted(need - listed):
        errors.append(f"binary links {', '.join(pkgs[p])} from {p}, missing in the Dockerfile's runtime list")
    for p in sorted(listed - need - NON_LIBRARY):
        errors.append(f"Dockerfile installs {p}, which the binary does not link against")
    for p in sorted(NON_LIBRARY - listed):
        errors.append(f"Dockerfile runtime list lacks {p}")
    for e in errors:
        print("FAIL:", e)
    print(f"ldd {a.binary}: {len(need)} packages ({' '.join(sorted(need))})")
    print(f"{0 if errors else 1} passed, {1 if errors else 0} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
