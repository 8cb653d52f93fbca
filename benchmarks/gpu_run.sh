#!/usr/bin/env bash
# Run benchmarks/gpu.py on the GPU machine (no network): a venv over the image's torch/transformers, the carried
# wheels from benchmarks/gpu_wheels.sh, docrag itself, then the benchmark. Results land in $OUT.
#
#   benchmarks/gpu_run.sh [CORPUS] [gpu.py options ...]     # CORPUS default .whl/corpus
#
# Device runner:  carry [".whl"], timeout_s 600, command  `bash benchmarks/gpu_run.sh .whl/corpus`
# Env: WHEELS (default .whl, else wheels/), VENV (/tmp/docrag-gpu-venv), PYTHON (python3), BUDGET_S (420).
# Back here: $OUT/gpu.json (everything), $OUT/gpu.md (the RESULTS.md section: append it), $OUT/gpu.log.
set -uo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-.whl/corpus}
[ $# -gt 0 ] && shift
WHEELS=${WHEELS:-.whl}
[ -d "$WHEELS" ] || WHEELS=wheels
PY=${PYTHON:-python3}
VENV=${VENV:-/tmp/docrag-gpu-venv}
export OUT=${OUT:-$PWD/out/gpu}
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
echo "== $(date -u) on $(hostname): $($PY -V 2>&1) at $(command -v "$PY")"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>/dev/null || echo "(no nvidia-smi)"

# 1. A venv that sees the image's packages. --system-site-packages alone gives the *base* interpreter's
#    site-packages, and the image's python3 is itself a venv (/opt/torch/.venv): add its site dirs explicitly,
#    after the new venv's own (so what we install here wins).
"$PY" -m venv --system-site-packages --without-pip "$VENV" || { echo "venv creation failed"; exit 1; }
VPY="$VENV/bin/python"
site_dir=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" - "$site_dir" <<'EOF'
import site, sys
dirs = [d for d in site.getsitepackages() + [site.getusersitepackages()] if d]
with open(sys.argv[1] + "/zz_parent_site.pth", "w") as fh:
    for d in dirs:
        fh.write(f"import site; site.addsitedir({d!r})\n")
EOF
"$VPY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' \
  || { echo "the venv does not see torch/transformers"; exit 1; }

# 2. The carried wheels, without dependencies (they are exactly what the image lacks). lancedb travels as
#    an uncompressed wheel inside .xz (see gpu_wheels.sh).
if [ -d "$WHEELS" ]; then
  stage=/tmp/docrag-wheels
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$WHEELS"/*.whl "$stage"/ 2>/dev/null || true
  for x in "$WHEELS"/*.whl.xz; do
    [ -e "$x" ] || continue
    "$VPY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"), 1 << 24)' \
      "$x" "$stage/$(basename "${x%.xz}")"
  done
  ls "$stage"
  "$VPY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    "$stage"/*.whl || echo "WARNING: some wheels did not install"
else
  echo "WARNING: no wheels folder ($WHEELS): relying on the image's packages"
fi

# 3. docrag itself (editable, no build isolation: no index here). If the image's setuptools cannot build it,
#    a package folder of links stands in (docrag.parsers/pipeline/indexes live at the repo root).
if ! "$VPY" -m pip install -q --no-index --no-deps --no-build-isolation --disable-pip-version-check -e . ; then
  echo "editable install failed: linking the package instead"
  shim=/tmp/docrag-shim
  rm -rf "$shim" && mkdir -p "$shim/docrag"
  cp docrag/*.py "$shim/docrag/" && cp docrag/py.typed "$shim/docrag/" 2>/dev/null
  for p in parsers pipeline indexes; do ln -s "$PWD/$p" "$shim/docrag/$p"; done
  echo "$shim" > "$site_dir/docrag_shim.pth"
fi
"$VPY" -m pip check 2>&1 | head -20 || true
"$VPY" - <<'EOF'
from importlib.metadata import version
for d in ("docrag", "colpali-engine", "lancedb", "pyarrow", "pydantic", "pydantic-settings", "pypdfium2", "peft",
          "scipy", "torch", "torchvision", "transformers"):
    try:
        print(f"  {d} {version(d)}")
    except Exception as exc:
        print(f"  {d} MISSING ({exc})")
import docrag.api, docrag.indexes.store  # noqa: E401,F401  fails loudly here rather than in a phase
print("docrag imports")
EOF
echo "== setup took $(( $(date +%s) - t0 )) s"

# 4. The benchmark. RESULTS.md changes made here do not come back: gpu.md in $OUT is the section to append.
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
"$VPY" benchmarks/gpu.py --corpus "$CORPUS" --budget-s "${BUDGET_S:-420}" --no-save "$@"
rc=$?
echo "== gpu.py exit $rc; total $(( $(date +%s) - t0 )) s; files in $OUT:"
ls -la "$OUT"
exit $rc
