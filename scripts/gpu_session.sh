#!/usr/bin/env bash
# The GPU checks of the developers' guide in one run, for a lent CUDA machine; nothing in the toolkit,
# its tests or CI depends on it (README, "Where the numbers come from", says what it measured).
#   bash scripts/gpu_session.sh pack           # here: .gpu/ (git-ignored) with what that machine lacks
#   bash scripts/gpu_session.sh run OUT        # there, with .gpu carried: results under OUT
# 'pack' needs the toolkit's environment, ../shared and a face pool with labels (make pool). 'run' needs
# python3 with torch (CUDA), typer, rich, opencv and scikit-image; basicsr, facexlib and gfpgan come
# from .gpu/site. Each step is time-bounded, so one failure leaves the others' results:
#  1. benchmark net at 512 px (the paper's width) in fp32/bf16/fp16, batch 1 and 8, against GFPGANv1Clean;
#  2. training speed at 512 px: 50 iterations of options/gpu/mpcnet_pool512.yml at the paper's width in fp32,
#     bf16 and fp16, then as step 3 trains it;
#  3. a 512 px training run: stage 1 (options/gpu/parsenet_pool512.yml), then stage 3 for STAGE3_SECONDS
#     (default 150) at the speed step 2 measured; its EMA weights come back as mpcnet_pool512.pth (fp16);
#  4. benchmark restore of CodeFormer's whole photos with the bundled default against GFPGANer, fp32 and --amp.
# The pool travels as JPEG (quality 95) to fit the 64 MiB a call carries; its lists and labels.csv follow.
set -u
POOL=${POOL:-datasets/face_pool}

pack() {
    set -e
    rm -rf .gpu && mkdir -p .gpu/site .gpu/weights .gpu/photos
    local site
    site=$(python -c 'import basicsr, os; print(os.path.dirname(os.path.dirname(basicsr.__file__)))')
    for p in basicsr facexlib gfpgan; do cp -r "$site/$p" .gpu/site/; done
    find .gpu/site -name __pycache__ -prune -exec rm -rf {} +
    cp ../shared/weights/retinaface_mobilenet0.25_Final.pth .gpu/weights/
    cp ../shared/data/codeformer-inputs/whole_imgs/* .gpu/photos/
    python - "$POOL" .gpu/pool <<'EOF'
import sys
from pathlib import Path
import cv2
from mpcnet.data.pool_labels import LABELS_DIR, label_path, pool_faces, read_table, write_table
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
(dst / "faces").mkdir(parents=True); (dst / LABELS_DIR).mkdir()
jpg = lambda face: str(Path(face).with_suffix(".jpg"))
table, labels = read_table(src), {}
for split in ("train", "val"):
    faces = pool_faces(src, split)
    for face in faces:
        cv2.imwrite(str(dst / jpg(face)), cv2.imread(str(src / face)), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if face in table and label_path(src, face).is_file():
            (dst / LABELS_DIR / label_path(src, face).name).write_bytes(label_path(src, face).read_bytes())
            labels[jpg(face)] = table[face]
    (dst / f"{split}.txt").write_text("".join(jpg(f) + "\n" for f in faces))
write_table(dst, labels, list(labels))
print(f"{dst}: {sum(1 for _ in (dst / 'faces').iterdir())} faces, {len(labels)} labels")
EOF
    du -sh .gpu
}

# its/s between the log lines of iterations $2 and $3 of a training log
speed() {
    python - "$@" <<'EOF'
import re, sys
from datetime import datetime
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+ \S+) INFO: .*iter:\s*([\d,]+),", line)
    if m:
        t[int(m.group(2).replace(",", ""))] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
a, b = int(sys.argv[2]), int(sys.argv[3])
print(f"{(b - a) / (t[b] - t[a]).total_seconds():.3f}")
EOF
}

run() {
    local out=$1 m="python3 -m mpcnet_cli.main"
    export PYTHONPATH=$PWD/.gpu/site:$PWD PYTHONUNBUFFERED=1 MPCNET_WEIGHTS_DIR=$PWD/.gpu/weights
    mkdir -p datasets && ln -sfn ../.gpu/pool datasets/face_pool
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'

    echo "== 1. benchmark net (512 px, the paper's width) against GFPGANv1Clean"
    timeout 150 $m benchmark net --device cuda --dtype fp32,bf16,fp16 --batch-sizes 1,8 --against gfpgan \
        --iters 20 --warmup 5 --md "$out/bench_net.md"
    echo "== 2. training speed at 512 px (batch 16): the paper's width in fp32, bf16, fp16; then step 3's network"
    local run its=""
    for run in fp32 bf16 fp16 step3; do
        local amp=$run width=(--set network_g.narrow=1.0 --set network_g.num_style_feat=512 --set network_g.num_mlp=8
            --set network_g.use_gan_prior=true --set network_g.freeze_gan=true)
        [ $run = fp32 ] && amp='~'
        [ $run = step3 ] && amp=bf16 && width=()
        timeout 80 $m train -opt options/gpu/mpcnet_pool512.yml --set name=speed_$run "${width[@]}" \
            --set "train.amp=$amp" --set train.total_iter=50 --set logger.print_freq=10 --set val.val_freq=100000 \
            --set logger.save_checkpoint_freq=100000 --set network_g.parse_prior_path='~' > /tmp/speed_$run.txt 2>&1 || tail -4 /tmp/speed_$run.txt
        local s
        s=$(speed experiments/speed_$run/train_*.log 10 50 2>/dev/null) || s=failed
        echo "$run (amp $amp): $s it/s, iterations 10-50" | tee -a "$out/speed.txt"
        [ $run = step3 ] && its=$s
    done

    echo "== 3. a 512 px training run: stage 1, then stage 3 for ${STAGE3_SECONDS:=150} s"
    timeout 150 $m train -opt options/gpu/parsenet_pool512.yml > /tmp/stage1.txt 2>&1 || tail -4 /tmp/stage1.txt
    cp experiments/parsenet_pool512/train_*.log "$out/parsenet_pool512.log"
    local n
    n=$(python3 -c "import sys; s=float(sys.argv[1]) if sys.argv[1] not in ('', 'failed') else 2.0; print(max(100, int(s * $STAGE3_SECONDS) // 50 * 50))" "$its")
    echo "stage 3: $n iterations"
    timeout $((STAGE3_SECONDS + 60)) $m train -opt options/gpu/mpcnet_pool512.yml --set train.total_iter=$n \
        --set val.val_freq=$n --set logger.save_checkpoint_freq=$n > /tmp/stage3.txt 2>&1 || tail -4 /tmp/stage3.txt
    cp experiments/mpcnet_pool512/train_*.log "$out/mpcnet_pool512.log"
    python3 scripts/release_weights.py experiments/mpcnet_pool512/models/net_g_latest.pth "$out/mpcnet_pool512.pth" \
        --name mpcnet_pool512 --iter "$n" --note "options/gpu/mpcnet_pool512.yml, $n iterations on a GPU (EMA weights)"
    echo "== 4. benchmark restore (bundled default) against GFPGANer"
    timeout 90 $m benchmark restore .gpu/photos --device cuda --against gfpgan --rounds 3 --md "$out/bench_restore.md"
    timeout 60 $m benchmark restore .gpu/photos --device cuda --amp --rounds 3 --md "$out/bench_restore_amp.md"

    grep -h "Validation" "$out"/parsenet_pool512.log "$out"/mpcnet_pool512.log
}

case "${1:-}" in
    pack) pack ;;
    run) [ -n "${2:-}" ] || { echo "usage: $0 run OUT" >&2; exit 2; }; mkdir -p "$2"; run "$2" 2>&1 | tee "$2/session.log" ;;
    *) echo "usage: $0 pack | run OUT" >&2; exit 2 ;;
esac
