#!/usr/bin/env bash
# Same-run comparison of tlcl (PoCL, or --device=N) with PyTorch and Keras on
# the CPU (2 threads each), 224x224, batch 16, inference and a training step
# (forward, cross-entropy, backward, Adam), 10 classes, random weights:
#   efficientnet-b0     PyTorch: torchvision's EfficientNet-B0;
#                       Keras: keras.applications.EfficientNetB0
#   efficientnetv2-b0   PyTorch: tools/torch_efficientnet_v2.py (torchvision
#                       has no V2-B0); Keras: keras.applications.EfficientNetV2B0
#   efficientnet-lite0  PyTorch: the model of tools/make_lite0_fixture.py;
#                       Keras: none (keras.applications has no Lite0), skipped
# Peers, each driven the fastest way its documentation gives for a CPU
# (issue 16 item 1):
#   torch113       Debian's PyTorch 1.13 (/usr/bin/python3), NCHW, eager: the
#                  baseline of the first round
#   torch          current PyTorch from PyPI, channels_last model and input, eager
#   torch-compile  the same with torch.compile (inductor); its first step, the
#                  compile, is timed apart and printed, the img/s count warm steps
#   keras          Keras 3 / TensorFlow, model.compile + train_on_batch /
#                  predict_on_batch (faster than the tf.function step used before)
#   keras-xla      the same with jit_compile=True (XLA)
# The runs alternate (tlcl, peer 1, peer 2, ..., tlcl, ...) and the best of each
# is compared, so a passing load on the machine hurts all alike. Per (arch,
# mode): one line per peer (img/s of both, the ratio tlcl / peer, the ratio of
# the medians, a check on one lucky run, and every run), then the best peer and
# the ratio tlcl / best peer, then the CEILING: tlcl's compute-only bound
# (its step's FLOPs at the GEMM peak measured in the same run) in img/s, and
# that over the best peer, the highest ratio any direct-convolution program
# could show here.
# Memory: every run is under /usr/bin/time, whose peak resident set size of
# the whole process (start-up, framework and model included; PoCL's device
# buffers are host memory, so tlcl's count) is printed per program as the
# lowest peak of its rounds, with the ratio tlcl / best peer (issue 16 item
# 2: at most 0.6 at batch 16 and 64). tlcl runs with --no-peaks here, so its
# figure holds no GEMM/copy micro-benchmark buffers.
#
# Current PyTorch: installed by this script, idempotently, into $PEER_VENV
# [build/venv-peers] from PyPI (the only index reachable here; the CPU-only
# wheels live on download.pytorch.org). PyPI's Linux x86_64 wheel is a CUDA
# build: `pip install torch torchvision` also pulls triton, cuda-bindings and
# ~20 nvidia-* packages (about 5 GB installed). libtorch.so links the CUDA
# libraries (DT_NEEDED of libtorch_cuda.so, libtorch_cpu.so, libtorch_python.so),
# so `--no-deps` alone does not import ("libcufile.so.0: cannot open shared
# object file"). The leanest set that imports and runs on the CPU is therefore:
# torch and torchvision with --no-deps, their pure-Python deps, and only the
# nvidia-* packages holding those linked libraries (TORCH_CUDA_LIBS below);
# triton, cuda-bindings, cusolver, curand, nvtx and cccl stay out (4.5 GB
# installed in all; torch.compile on the CPU needs no triton).
# Keras: the python3 in $KERAS_PYTHON if it imports TensorFlow (the pyenv one
# here, TensorFlow 2.21); otherwise tensorflow-cpu is installed into the venv.
# When pip or PyPI is unavailable, the PyPI peers print a SKIPPED line and the
# comparison runs with the others (Debian's PyTorch at least).
#
# usage: bench/compare_peers.sh [--device=N] [ROUNDS]        (default: device 0, 2 rounds)
# environment (defaults in brackets):
#   ARCHS          archs to run [efficientnet-b0 efficientnetv2-b0 efficientnet-lite0]
#   MODES          [infer train]
#   PEERS          [torch113 torch torch-compile keras keras-xla]
#   BATCH SIZE STEPS THREADS  [16 224 3 2]
#   TORCH_PYTHON   Debian's python3 with python3-torch, python3-torchvision [/usr/bin/python3]
#   KERAS_PYTHON   a python3 with TensorFlow [python3]
#   PEER_VENV      the virtual environment for the PyPI peers [build/venv-peers]
#   VENV_PYTHON    the python3 that creates it [python3]
#   INSTALL_PEERS  0: install nothing, use what $PEER_VENV already has [1]
#   PRECISION      tlcl's model.precision: float32 or mixed_bfloat16 [float32]
#   TORCH_OMP_WAIT_POLICY  OMP_WAIT_POLICY for PyTorch [PASSIVE]; empty: libgomp's
#                  default. With the default, an OpenMP thread spins at every
#                  barrier, and on this 2-core machine shared with other jobs
#                  PyTorch then fell 4-70x (Lite0 inference at batch 2 / 64:
#                  3.10 and 14.24 img/s against 204 and 242 with PASSIVE, same
#                  minutes, load average 3.7-4.1); tlcl (PoCL) and TensorFlow
#                  do not spin like that.
# e.g. a quick run: ARCHS=efficientnetv2-b0 MODES=train PEERS="torch keras" bench/compare_peers.sh --device=0 1
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:---device=0}"
rounds="${2:-2}"
ARCHS="${ARCHS:-efficientnet-b0 efficientnetv2-b0 efficientnet-lite0}"
MODES="${MODES:-infer train}"
PEERS="${PEERS:-torch113 torch torch-compile keras keras-xla}"
PRECISION="${PRECISION:-float32}"
PEERS="${PEERS//pytorch/torch113}" # the first round's name, in older commands of bench/README.md
KERAS_ARCHS="efficientnet-b0 efficientnetv2-b0"
BATCH="${BATCH:-16}" SIZE="${SIZE:-224}" STEPS="${STEPS:-3}" THREADS="${THREADS:-2}"
TORCH_PYTHON="${TORCH_PYTHON:-/usr/bin/python3}"
KERAS_PYTHON="${KERAS_PYTHON:-python3}"
PEER_VENV="${PEER_VENV:-build/venv-peers}"
VENV_PYTHON="${VENV_PYTHON:-python3}"
INSTALL_PEERS="${INSTALL_PEERS:-1}"
TORCH_OMP_WAIT_POLICY="${TORCH_OMP_WAIT_POLICY-PASSIVE}"
TORCH_PURE_DEPS="filelock fsspec jinja2 networkx setuptools sympy typing-extensions numpy pillow"
TORCH_CUDA_LIBS="nvidia-cuda-runtime nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cublas nvidia-cufft
  nvidia-cufile nvidia-cusparse nvidia-nvjitlink nvidia-cusparselt-cu13 nvidia-nccl-cu13
  nvidia-cudnn-cu13 nvidia-nvshmem-cu13"
torch_env=(env); [ -n "$TORCH_OMP_WAIT_POLICY" ] && torch_env=(env OMP_WAIT_POLICY="$TORCH_OMP_WAIT_POLICY")
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time for the peak memory (apt-get install time)"; exit 1; }

has() { case " $1 " in *" $2 "*) return 0 ;; *) return 1 ;; esac; }
log=$(mktemp); trap 'rm -f "$log" "$log.compile" "$log.rss"' EXIT
venv_py="$PEER_VENV/bin/python"
install_log="$PEER_VENV.install.log"
imports() { [ -x "$1" ] && "$1" -c "$2" >/dev/null 2>&1; }
# venv_pip PACKAGES...: pip install into the venv (created if missing), output to $install_log
venv_pip() {
    [ "$INSTALL_PEERS" = 1 ] || return 1
    mkdir -p "$(dirname "$PEER_VENV")"
    { [ -x "$venv_py" ] || "$VENV_PYTHON" -m venv "$PEER_VENV"; } >>"$install_log" 2>&1 &&
        "$venv_py" -m pip install "$@" >>"$install_log" 2>&1
}
# setup_torch: 0 when the venv imports torch and torchvision (installing them first if needed)
setup_torch() {
    imports "$venv_py" 'import torch, torchvision' && return 0
    [ "$INSTALL_PEERS" = 1 ] && echo "installing PyTorch from PyPI into $PEER_VENV (log: $install_log) ..."
    # shellcheck disable=SC2086 # the lists are words on purpose
    venv_pip --no-deps torch torchvision && venv_pip $TORCH_PURE_DEPS && venv_pip --no-deps $TORCH_CUDA_LIBS &&
        imports "$venv_py" 'import torch, torchvision'
}
# setup_keras: prints the python3 that imports TensorFlow (KERAS_PYTHON, else the venv, installing tensorflow-cpu)
setup_keras() {
    local py
    py=$(command -v "$KERAS_PYTHON" || true)
    if [ -n "$py" ] && imports "$py" 'import tensorflow'; then echo "$py"; return 0; fi
    imports "$venv_py" 'import tensorflow' || { venv_pip tensorflow-cpu && imports "$venv_py" 'import tensorflow'; } ||
        return 1
    echo "$venv_py"
}

# run PROGRAM ARGS...: the img/s it printed, or "fail" (its last lines go to
# stderr); a "compile X s" it printed goes to the file $log.compile, its peak
# RSS in kB (/usr/bin/time's %M: the last line it writes) to $log.rss
run() {
    if /usr/bin/time -o "$log.rss" -f %M "$@" >"$log" 2>&1 && grep -q ' img/s' "$log"; then
        sed -n 's/.*, compile \([0-9.]*\) s).*/\1/p' "$log" | tail -1 >"$log.compile"
        sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p' "$log" | tail -1
    else
        echo "  failed: $*" >&2; grep -v -E '^(I0000|W0000|WARNING: All log)' "$log" | tail -3 | sed 's/^/    /' >&2
        : >"$log.compile"; : >"$log.rss"
        echo fail
    fi
}
best() { grep -v fail | sort -g | tail -1; }
lowest() { grep -v -e fail -e - | sort -g | head -1; }
mib() { echo $(($1 / 1024)); }
# the median of the runs that did not fail (the mean of the middle two for an even count)
median() { grep -v fail | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (a loaded machine moves single runs); PyTorch OMP_WAIT_POLICY=${TORCH_OMP_WAIT_POLICY:-default}"
available=""
torch_version() { "$1" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)' 2>/dev/null; }
if has "$PEERS" torch113; then
    if imports "$TORCH_PYTHON" 'import torch, torchvision'; then
        available+=" torch113"; echo "torch113: $(torch_version "$TORCH_PYTHON") ($TORCH_PYTHON, NCHW, eager)"
    else
        echo "torch113: SKIPPED, $TORCH_PYTHON does not import torch and torchvision (apt-get install python3-torch python3-torchvision)"
    fi
fi
if has "$PEERS" torch || has "$PEERS" torch-compile; then
    if setup_torch; then
        v=$(torch_version "$venv_py")
        has "$PEERS" torch && { available+=" torch"; echo "torch: $v ($venv_py, channels_last, eager)"; }
        has "$PEERS" torch-compile && { available+=" torch-compile"; echo "torch-compile: $v ($venv_py, channels_last, torch.compile)"; }
    else
        echo "torch, torch-compile: SKIPPED, could not install PyTorch from PyPI into $PEER_VENV (pip or PyPI unavailable, or INSTALL_PEERS=0; see $install_log)"
    fi
fi
if has "$PEERS" keras || has "$PEERS" keras-xla; then
    if keras_py=$(setup_keras); then
        v=$("$keras_py" -c 'import os; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"; import tensorflow as tf, keras; print("tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null)
        has "$PEERS" keras && { available+=" keras"; echo "keras: $v ($keras_py, train_on_batch / predict_on_batch)"; }
        has "$PEERS" keras-xla && { available+=" keras-xla"; echo "keras-xla: $v ($keras_py, the same with jit_compile=True)"; }
        echo "keras, keras-xla: efficientnet-lite0 SKIPPED (keras.applications has no EfficientNet-Lite0)"
    else
        echo "keras, keras-xla: SKIPPED, TensorFlow is not importable by $KERAS_PYTHON and tensorflow-cpu could not be installed into $PEER_VENV (see $install_log)"
    fi
fi
for arch in $ARCHS; do
    has "$available" torch113 && "$TORCH_PYTHON" bench/pytorch_peer.py check "$arch" build/tlcl
done

# peer_cmd PEER MODE ARCH: the command line of one peer's run
peer_cmd() {
    local args=("$2" "$BATCH" "$SIZE" "$STEPS" "$THREADS" "$3")
    case "$1" in
        torch113) echo "${torch_env[*]} $TORCH_PYTHON bench/pytorch_peer.py ${args[*]} plain" ;;
        torch) echo "${torch_env[*]} $venv_py bench/pytorch_peer.py ${args[*]} channels_last" ;;
        torch-compile) echo "${torch_env[*]} $venv_py bench/pytorch_peer.py ${args[*]} compile" ;;
        keras) echo "$keras_py bench/keras_peer.py ${args[*]} batch" ;;
        keras-xla) echo "$keras_py bench/keras_peer.py ${args[*]} xla" ;;
    esac
}
# print_ceiling ARCH MODE BEST_PEER_IMG_S: the most any program doing the
# model's FLOPs could reach here, from tlcl bench's compute-only bound (every
# FLOP of the step at the GEMM peak, both measured in this run), and that as a
# multiple of the best peer: a target ratio above it cannot be met on this
# machine by direct convolution, whatever the kernels.
print_ceiling() {
    local ms
    ms=$(build/tlcl bench "$dev" --arch="$1" --mode="$2" --batch="$BATCH" --size="$SIZE" --steps=2 --warmup=1 \
         --profile --precision="$PRECISION" 2>/dev/null | sed -n 's/.*(\([0-9.]*\) ms: every FLOP at the GEMM peak).*/\1/p')
    [ -n "$ms" ] || { echo "$1 $2: no compute-only bound (tlcl bench --profile failed)"; return; }
    printf '%-18s %-5s batch %s size %s: CEILING %.2f img/s at the compute-only bound (%.1f ms a step); %.2f x the best peer at most\n' \
        "$1" "$2" "$BATCH" "$SIZE" "$(echo "$BATCH * 1000 / $ms" | bc -l)" "$ms" "$(echo "$BATCH * 1000 / $ms / $3" | bc -l)"
}
for arch in $ARCHS; do
for mode in $MODES; do
    peers=()
    for peer in $available; do
        case "$peer" in keras*) has "$KERAS_ARCHS" "$arch" || continue ;; esac
        peers+=("$peer")
    done
    [ ${#peers[@]} -gt 0 ] || { echo "$arch $mode: no peer"; continue; }
    t=(); trss=""; declare -A runs=() compiles=() rss=()
    for _ in $(seq "$rounds"); do
        t+=("$(run build/tlcl bench "$dev" --arch="$arch" --mode="$mode" --batch="$BATCH" --size="$SIZE" --steps="$STEPS" --warmup=1 --no-peaks --precision="$PRECISION")")
        r=$(tail -1 "$log.rss"); trss+="${r:--} "
        for peer in "${peers[@]}"; do
            # shellcheck disable=SC2046 # the command line splits into words on purpose
            runs[$peer]+="$(run $(peer_cmd "$peer" "$mode" "$arch")) "
            c=$(cat "$log.compile"); compiles[$peer]+="${c:--} "
            r=$(tail -1 "$log.rss"); rss[$peer]+="${r:--} "
        done
    done
    tb=$(printf '%s\n' "${t[@]}" | best || true)
    tm=$(printf '%s\n' "${t[@]}" | median)
    # shellcheck disable=SC2086 # one word per round
    tr=$(printf '%s\n' $trss | lowest || true)
    top="" topb=0 topm=0 topr=
    for peer in "${peers[@]}"; do
        read -r -a pr <<<"${runs[$peer]}"
        pb=$(printf '%s\n' "${pr[@]}" | best || true)
        comp=""
        case "$peer" in *compile | *xla) comp="; compile s: ${compiles[$peer]% }" ;; esac
        if [ -z "$tb" ] || [ -z "$pb" ]; then
            printf '%-18s %-5s batch %s size %s: tlcl %s  %s %s  (no ratio: a program failed%s)\n' \
                "$arch" "$mode" "$BATCH" "$SIZE" "${tb:-failed}" "$peer" "${pb:-failed}" "$comp"
            continue
        fi
        pm=$(printf '%s\n' "${pr[@]}" | median)
        printf '%-18s %-5s batch %s size %s: tlcl %6.2f img/s  %-13s %6.2f img/s  ratio %.2f  (median ratio %.2f; runs: tlcl %s; %s %s%s)\n' \
            "$arch" "$mode" "$BATCH" "$SIZE" "$tb" "$peer" "$pb" "$(echo "$tb / $pb" | bc -l)" "$(echo "$tm / $pm" | bc -l)" \
            "${t[*]}" "$peer" "${pr[*]}" "$comp"
        # shellcheck disable=SC2086 # one word per round
        pr_rss=$(printf '%s\n' ${rss[$peer]} | lowest || true)
        [ -n "$tr" ] && [ -n "$pr_rss" ] &&
            printf '%-18s %-5s batch %s size %s: peak RSS tlcl %d MiB  %-13s %d MiB  ratio %.2f\n' \
                "$arch" "$mode" "$BATCH" "$SIZE" "$(mib "$tr")" "$peer" "$(mib "$pr_rss")" "$(echo "$tr / $pr_rss" | bc -l)"
        if [ "$(echo "$pb > $topb" | bc -l)" = 1 ]; then top=$peer topb=$pb topm=$pm topr=$pr_rss; fi
    done
    if [ -n "$top" ] && [ -n "$tb" ]; then
        mem=""
        [ -n "$tr" ] && [ -n "$topr" ] && mem=$(printf '; peak RSS tlcl %d MiB, best peer %d MiB, tlcl / best peer %.2f' \
            "$(mib "$tr")" "$(mib "$topr")" "$(echo "$tr / $topr" | bc -l)")
        printf '%-18s %-5s batch %s size %s: BEST PEER %s %.2f img/s; tlcl %.2f img/s; tlcl / best peer %.2f (median ratio %.2f)%s\n' \
            "$arch" "$mode" "$BATCH" "$SIZE" "$top" "$topb" "$tb" "$(echo "$tb / $topb" | bc -l)" "$(echo "$tm / $topm" | bc -l)" "$mem"
        print_ceiling "$arch" "$mode" "$topb"
    fi
    unset runs compiles rss
done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
