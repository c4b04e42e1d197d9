#!/usr/bin/python3
"""The container image's runtime package list must be exactly what the
binaries need: `ldd` of every --binary (exit-reconciler and
exit-reconciler-operator) → the Debian package owning each library
(`dpkg -S`); their union must equal the runtime stage's `apt-get install` list
in the Dockerfile, apart from ca-certificates. No Docker daemon is needed.

Also checks the Dockerfile's shape: a debian:bookworm build stage that runs
scripts/build.sh and ctest and strips every binary, a debian:bookworm-slim
runtime stage that copies every binary into the entrypoint's directory (the
launcher exec()s the operator from there), a numeric USER 65532:65532 and the
exit-reconciler entrypoint.

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


def copy_destinations(instructions):
    """{file name: destination directory} for every source of a COPY."""
    dests = {}
    for instr, rest in instructions:
        if instr != "COPY":
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        if len(words) < 2:
            continue
        *sources, dest = words
        for src in sources:
            name = os.path.basename(src)
            if dest.endswith("/") or len(sources) > 1:
                dests[name] = os.path.normpath(dest)
            elif os.path.basename(dest) == name:
                dests[name] = os.path.dirname(os.path.normpath(dest))
            else:
                dests[name] = os.path.normpath(dest)  # a directory without the slash
    return dests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--binary", required=True, action="append",
                    help="a binary the image ships; repeat for each")
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
    m = re.search(r'"([^"]*/)?exit-reconciler"', entry[0]) if len(entry) == 1 else None
    if not m:
        errors.append(f"ENTRYPOINT must be exit-reconciler, is {entry}")
    entry_dir = os.path.normpath(m.group(1)) if m and m.group(1) else None
    copied = copy_destinations(runtime["instr"])
    for name in sorted({os.path.basename(b) for b in a.binary}):
        if not re.search(rf"strip --strip-unneeded[^&]*/{re.escape(name)}(\s|$)", build_runs):
            errors.append(f"build stage does not strip {name}")
        if name not in copied:
            errors.append(f"runtime stage does not COPY {name}")
        elif entry_dir and copied[name] != entry_dir:
            errors.append(f"{name} is copied to {copied[name]}, not next to the entrypoint in "
                          f"{entry_dir}")
    installs = [r for i, r in runtime["instr"] if i == "RUN" and "apt-get install" in r]
    if len(installs) != 1:
        errors.append("runtime stage needs exactly one apt-get install")
        listed = set()
    else:
        after = installs[0].split("apt-get install", 1)[1].split("&&", 1)[0]
        listed = {w for w in after.split() if not w.startswith("-")}

    missing = [b for b in a.binary if not os.path.exists(b)]
    if missing:
        for e in errors:
            print("FAIL:", e)
        print(f"SKIPPED: no binary at {', '.join(missing)}: the runtime package list was not "
              "compared with ldd (the Dockerfile shape was checked)")
        return 1 if errors else 77
    pkgs, unresolved = {}, []
    for b in a.binary:
        p, u = linked_packages(b)
        for pkg, libs in p.items():
            have = pkgs.setdefault(pkg, [])
            for lib in libs:
                if lib not in have:
                    have.append(lib)
        unresolved += u
        print(f"ldd {b}: {len(p)} packages")
    for u in unresolved:
        errors.append(f"ldd: library without a Debian package: {u}")
    need = set(pkgs)
    for p in sorted(need - listed):
        errors.append(f"binaries link {', '.join(pkgs[p])} from {p}, missing in the Dockerfile's runtime list")
    for p in sorted(listed - need - NON_LIBRARY):
        errors.append(f"Dockerfile installs {p}, which no binary links against")
    for p in sorted(NON_LIBRARY - listed):
        errors.append(f"Dockerfile runtime list lacks {p}")
    for e in errors:
        print("FAIL:", e)
    print(f"ldd, all binaries: {len(need)} packages ({' '.join(sorted(need))})")
    print(f"{0 if errors else 1} passed, {1 if errors else 0} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
