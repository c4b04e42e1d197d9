#!/usr/bin/python3
"""The product binaries (exit-reconciler, exit-reconciler-operator: what the
image ships) carry no development tooling: no API simulator, no sandbox, no
source path. The sandbox and the simulators are built beside them
(sandbox/, sim/), so a stray link line would pull them back in unnoticed.

For every --binary:
- `nm` (demangled, local symbols too): no symbol names a simulator or sandbox
  class, namespace or entry point (SIMULATOR_SYMBOLS);
- no strong global symbol defined in a --dev-archive (the simulator and
  sandbox static libraries) is defined in the binary, whatever its name;
- `strings` of a copy stripped as the Dockerfile strips it (strip
  --strip-unneeded; the debug sections of an unstripped build hold source
  paths by design): no path into the source tree --root (the sandbox's
  default samples directory was one) nor to one of its source files by
  relative path, and not the simulator's fault-injection route prefix
  "/_sim/".

--control (the development binary exit-reconciler-sandbox) must show every
one of those, so a renamed simulator class or a stripped binary fails the
check instead of passing it vacuously.

Exit codes: 0 pass, 1 failure, 77 skipped (a binary was not built, or nm,
strip or strings is missing).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Simulator and sandbox names (sim/, sim/kfp/, sandbox/). Every alternative
# must occur in the --control binary.
SIMULATOR_NAMES = ["KubeApiSimulator", "KfpApiSimulator", "KfpHistoryApi", "PersistenceAgentSim",
                   "KfpReportHandler", "SandboxHistory", "runSandbox", "makeKfpRunJson"]
SIMULATOR_NAMESPACES = ["kubesim", "kfpsim", "kfphistory"]
SIMULATOR_SYMBOLS = re.compile(
    r"\bexitrec::(?:(?P<name>" + "|".join(SIMULATOR_NAMES) + r")\b|(?P<ns>" +
    "|".join(SIMULATOR_NAMESPACES) + r")::)")
# The Kubernetes API simulator's fault-injection and control routes
# (sim/kube_api_simulator.cpp).
SIM_ROUTE = "/_sim/"
# Strong definitions: text, initialized and zeroed data, read-only data.
STRONG = set("TDBR")
STATIC_INIT = "_GLOBAL__sub_I_"


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, check=True, **kw).stdout


def demangled_symbols(binary):
    """Every symbol name of `binary`, demangled; static initializers
    (_GLOBAL__sub_I_<first function>) by the name of their function."""
    names = []
    for line in run(["nm", "--no-sort", binary]).splitlines():
        parts = line.split()
        if len(parts) >= 2:
            name = parts[-1]
            names.append(name[len(STATIC_INIT):] if name.startswith(STATIC_INIT) else name)
    return run(["c++filt"], input="\n".join(names)).splitlines()


def strong_globals(path):
    """Mangled names of the strong global symbols `path` defines."""
    out = run(["nm", "--defined-only", "--extern-only", "--no-sort", path])
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-2] in STRONG:
            found.add(parts[-1])
    return found


def shipped_strings(binary, tmp):
    """`strings` of `binary` stripped as the image's binaries are."""
    stripped = os.path.join(tmp, os.path.basename(binary))
    run(["strip", "--strip-unneeded", "-o", stripped, binary])
    return run(["strings", "-n", "6", stripped]).splitlines()


def source_path_pattern(root):
    """A path into the source tree: ROOT/ followed by one of its entries, or
    a source file of one of its folders by relative path (__FILE__ is
    relative when ccache's CCACHE_BASEDIR rewrote the compile line)."""
    root = os.path.realpath(root)
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    folders = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    return re.compile(re.escape(root) + "/(?:" + "|".join(map(re.escape, entries)) + r")\b|"
                      r"(?:^|[^\w.-])(?:\.\./)*(?:" + "|".join(map(re.escape, folders)) +
                      r")/[\w/.-]*\.(?:cpp|cc|h|hpp)\b")


def inspect(binary, archive_symbols, source_path, tmp):
    """What of the development tooling `binary` carries."""
    symbols = demangled_symbols(binary)
    by_pattern = {}
    for s in symbols:
        m = SIMULATOR_SYMBOLS.search(s)
        if m:
            by_pattern.setdefault(m.group("name") or m.group("ns"), []).append(s)
    defined = strong_globals(binary)
    from_archives = {a: sorted(syms & defined) for a, syms in archive_symbols.items()}
    texts = shipped_strings(binary, tmp)
    paths = [t for t in texts if source_path.search(t)]
    routes = [t for t in texts if SIM_ROUTE in t]
    return {"symbols": len(symbols), "defined": len(defined), "by_pattern": by_pattern,
            "from_archives": from_archives, "paths": paths, "routes": routes}


def sample(items, n=5):
    shown = [i if len(i) <= 160 else i[:157] + "..." for i in items[:n]]
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return "; ".join(shown) + more


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="the source tree")
    ap.add_argument("--binary", required=True, action="append", help="a product binary")
    ap.add_argument("--dev-archive", required=True, action="append",
                    help="a simulator or sandbox static library")
    ap.add_argument("--control", required=True,
                    help="a development binary that links every --dev-archive")
    a = ap.parse_args()
    for tool in ("nm", "c++filt", "strip", "strings"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} not found: the binaries were not inspected")
            return 77
    missing = [p for p in a.binary + a.dev_archive + [a.control] if not os.path.exists(p)]
    if missing:
        print(f"SKIPPED: not built: {', '.join(missing)}")
        return 77

    errors = []
    archive_symbols = {}
    for archive in a.dev_archive:
        archive_symbols[archive] = strong_globals(archive)
        if not archive_symbols[archive]:
            errors.append(f"{archive} defines no strong global symbol: nothing to look for")
    source_path = source_path_pattern(a.root)
    with tempfile.TemporaryDirectory(prefix="exitrec-nm-") as tmp:
        # The control: the development binary has all of it.
        c = inspect(a.control, archive_symbols, source_path, tmp)
        for name in SIMULATOR_NAMES + SIMULATOR_NAMESPACES:
            if name not in c["by_pattern"]:
                errors.append(f"control {a.control}: no symbol matches {name}: update "
                              "SIMULATOR_NAMES/SIMULATOR_NAMESPACES")
        for archive, found in c["from_archives"].items():
            if not found:
                errors.append(f"control {a.control}: defines none of {archive}'s symbols")
        if not c["paths"]:
            errors.append(f"control {a.control}: no source path in its strings "
                          f"(pattern {source_path.pattern})")
        if not c["routes"]:
            errors.append(f"control {a.control}: no {SIM_ROUTE} in its strings")
        print(f"control {os.path.basename(a.control)}: {c['symbols']} symbols, "
              f"{sum(len(v) for v in c['by_pattern'].values())} simulator or sandbox names")

        for binary in a.binary:
            name = os.path.basename(binary)
            r = inspect(binary, archive_symbols, source_path, tmp)
            if r["defined"] < 100:
                errors.append(f"{name}: only {r['defined']} defined symbols: stripped? "
                              "nm cannot vouch for it")
                continue
            for pattern, hits in sorted(r["by_pattern"].items()):
                errors.append(f"{name}: {len(hits)} symbols match {pattern}: {sample(hits)}")
            for archive, found in sorted(r["from_archives"].items()):
                if found:
                    errors.append(f"{name}: defines {len(found)} symbols of "
                                  f"{os.path.basename(archive)}: "
                                  f"{sample(run(['c++filt'], input=chr(10).join(found)).splitlines())}")
            if r["paths"]:
                errors.append(f"{name}: source paths in its strings: {sample(r['paths'])}")
            if r["routes"]:
                errors.append(f"{name}: the simulator route {SIM_ROUTE} in its strings: "
                              f"{sample(r['routes'])}")
            print(f"{name}: {r['symbols']} symbols, {r['defined']} strong globals inspected")
    for e in errors:
        print("FAIL:", e)
    checks = len(a.binary) + 1
    print(f"{0 if errors else checks} passed, {1 if errors else 0} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
