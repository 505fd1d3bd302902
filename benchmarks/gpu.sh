#!/usr/bin/env bash
# Run the benchmark suite on an accelerator (CUDA GPU) in under 5 minutes.
#
#   bash benchmarks/gpu.sh            # quick suite, writes benchmarks/results_gpu.json
#
# Installs jax[cuda12] when JAX does not see a GPU yet (the PyTorch reference stays on the
# CPU wheel pinned in benchmarks/requirements.txt: on GPU machines install a CUDA torch of the
# same version yourself if you want a GPU-vs-GPU comparison; the script reports what it used).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  pip install -q "jax[cuda12]==$(python -c 'import jax; print(jax.__version__)')"
fi
python -c "import jax; print('JAX backend:', jax.default_backend(), jax.devices())"
pip install -q -r benchmarks/requirements.txt

# Accelerator memory: let XLA allocate on demand so peak-memory figures mean something.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# --quick keeps each section to a few rounds; the time limit guards the 5-minute budget.
timeout 290 python -m benchmarks.run --quick --out benchmarks/results_gpu.json "$@"
