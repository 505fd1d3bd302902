#!/usr/bin/env bash
# Run the benchmark suite on an accelerator (CUDA GPU) in under 5 minutes.
#
#   bash benchmarks/gpu.sh            # quick suite, writes benchmarks/results_gpu.json
#
# Installs jax[cuda12] when JAX does not see a GPU yet. The PyTorch and mrpro references run
# on the GPU too where the installed torch sees it (PyPI's Linux torch wheels, as pinned in
# benchmarks/requirements.txt, are normally CUDA builds), else on the CPU; results_gpu.json
# records which ("torch_device"). Peak memory there is the host's resident memory.
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
